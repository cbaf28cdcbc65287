import { formatProblem, type Problem } from "./problems.js";
import { EnvironmentSchema, type Environment } from "./schema.js";

/**
 * What a definition may hold for a test or a rehearsal but never for a real deploy: values
 * the standards reserve for documentation and examples, a setting left unset that no deploy
 * can work without, and the names the package's test fixtures take. `validate` and the
 * Pulumi entry point (infra/index.ts) refuse them; the model (validateCatalog), the
 * rehearsal's localised stacks and the tests accept them, so the shipped stacks can carry a
 * placeholder that says where a real value goes.
 */

/** Test fixtures are named `fixture-…`, so a test that adds one beside the user's stacks never takes a name the user gave. */
export const FIXTURE_PREFIX = "fixture-";

/** Why a stack name is one a user may not give, or undefined. */
export function reservedName(name: string): string | undefined {
  return name.startsWith(FIXTURE_PREFIX)
    ? `names starting "${FIXTURE_PREFIX}" are reserved for the package's test fixtures (tests add them beside your stacks): pick another name`
    : undefined;
}

/** IPv4 ranges for documentation only (RFC 5737): never routed, so no deploy comes from one. */
const DOCUMENTATION_RANGES = [
  { range: "192.0.2.0/24", name: "TEST-NET-1" },
  { range: "198.51.100.0/24", name: "TEST-NET-2" },
  { range: "203.0.113.0/24", name: "TEST-NET-3" },
].map((r) => ({ ...r, ...parseCidr(r.range)! }));

/** Domains reserved for examples: the name itself and every name under it. */
const EXAMPLE_DOMAINS: { suffix: string; why: string }[] = [
  ...["example.com", "example.net", "example.org"].map((suffix) => ({ suffix, why: `RFC 2606 reserves ${suffix} for documentation` })),
  { suffix: "example", why: "RFC 2606 reserves the .example top-level domain for documentation" },
  { suffix: "test", why: "RFC 2606 reserves the .test top-level domain for tests" },
  { suffix: "invalid", why: "RFC 2606 reserves .invalid: no such name ever resolves" },
  { suffix: "localhost", why: "RFC 6761: a .localhost name is the machine that looks it up" },
];

/** Where to find one's own address: what goes in host.adminCidrs. */
const OWN_ADDRESS = "the addresses you deploy from, as <ip>/32 (yours: curl -s https://checkip.amazonaws.com)";

function parseCidr(cidr: string): { base: number; bits: number } | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!match) return undefined;
  const [a, b, c, d, bits] = match.slice(1).map(Number) as [number, number, number, number, number];
  return { base: (((a << 24) >>> 0) + (b << 16) + (c << 8) + d) >>> 0, bits };
}

/** The documentation range a CIDR lies wholly inside, or undefined. */
export function documentationRange(cidr: string): string | undefined {
  const parsed = parseCidr(cidr);
  if (!parsed) return undefined;
  const inside = DOCUMENTATION_RANGES.find((r) => parsed.bits >= r.bits && parsed.base >>> (32 - r.bits) === r.base >>> (32 - r.bits));
  return inside && `${inside.range}, ${inside.name}`;
}

/** Why a domain (or the domain of an e-mail address) is an example one, or undefined. */
export function exampleDomain(domain: string): string | undefined {
  const name = domain.toLowerCase().replace(/\.$/, "");
  return EXAMPLE_DOMAINS.find(({ suffix }) => name === suffix || name.endsWith(`.${suffix}`))?.why;
}

/** The problems that keep one parsed stack from a real deploy. Paths are prefixed with the stack name. */
export function deployProblems(env: Environment): Problem[] {
  const problems: Problem[] = [];
  const at = (path: string, message: string) => problems.push({ path: `${env.name}.${path}`, message });
  const domain = (path: string, value: string, instead: string) => {
    const why = exampleDomain(value);
    if (why) at(path, `${value} is an example domain (${why}), a placeholder: put ${instead}`);
  };
  const email = (path: string, value: string | undefined, instead: string) => {
    const why = value === undefined ? undefined : exampleDomain(value.slice(value.lastIndexOf("@") + 1));
    if (why) at(path, `${value} is at an example domain (${why}), a placeholder: put ${instead}`);
  };

  const reserved = reservedName(env.name);
  if (reserved) at("name", reserved);
  domain("domain", env.domain, "the site's own domain (its A record points at the stack's static IP)");
  env.extraDomains.forEach((extra, i) => domain(`extraDomains.${i}`, extra, "another domain of the site, or remove it"));
  if (env.host.dnsZone !== undefined) domain("host.dnsZone", env.host.dnsZone, "the DNS zone that holds the domain, or remove the field");
  if (env.tls.mode === "acme") email("tls.email", env.tls.email, "a mailbox you read (Let's Encrypt writes there before a certificate expires), or remove the field");
  email("alerts.email", env.alerts?.email, "the mailbox that should hear when the site is down");

  env.host.adminCidrs.forEach((cidr, i) => {
    const range = documentationRange(cidr);
    if (range) at(`host.adminCidrs.${i}`, `${cidr} is a documentation address (RFC 5737: ${range}, never routed), a placeholder: put ${OWN_ADDRESS}`);
  });
  // A written empty list without sshClosed is refused by the schema: an empty list here was left out.
  if (env.host.adminCidrs.length === 0 && !env.host.sshClosed) {
    at(
      "host.adminCidrs",
      `is not set, so port 22 is closed to every deploy (Pulumi reaches Docker on the host over SSH): list ${OWN_ADDRESS}, or set host.sshClosed: true for a host frozen on purpose`,
    );
  }
  return problems;
}

/**
 * The refusal of a real deploy of `stack` (infra/index.ts throws it before any resource), or
 * undefined when nothing stands in its way here. A definition the schema refuses is left to
 * the program, which reports it in full.
 */
export function deployRefusal(definitions: readonly unknown[], stack: string): string | undefined {
  const definition = definitions.find((d) => (d as { name?: unknown } | null)?.name === stack);
  const parsed = EnvironmentSchema.safeParse(definition);
  if (!parsed.success) return undefined;
  const problems = deployProblems(parsed.data);
  if (problems.length === 0) return undefined;
  return [
    `stack "${stack}" cannot be deployed: its definition still holds what only a test or a rehearsal may (stacks/, then npm run validate -- --stack ${stack}):`,
    ...problems.map(formatProblem),
  ].join("\n");
}
