/** Single-quotes a value for a POSIX shell, whatever it holds. */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** A shell word: bare when it is plain, single-quoted otherwise. */
export const shellWord = (value: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : shellQuote(value));
