import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The docs find the user's address with `curl -s https://checkip.amazonaws.com` (AWS's
 * what-is-my-address service), which this machine cannot reach. A folder to put first on PATH
 * whose `curl` answers that one URL as AWS does (the address and a newline) and refuses
 * anything else, so a documented command runs as written. 100.64.0.0/10 (shared address
 * space, RFC 6598) is an address a user can be seen from, and no documentation range.
 */
export const SEEN_FROM = "100.64.0.7";

/** A new folder holding the stand-in `curl` (the caller removes it). */
export function standInCurl(): string {
  const bin = mkdtempSync(join(tmpdir(), "stand-in-curl-"));
  writeFileSync(
    join(bin, "curl"),
    `#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    https://checkip.amazonaws.com|https://checkip.amazonaws.com/) echo ${SEEN_FROM}; exit 0 ;;
  esac
done
echo "stand-in curl: only https://checkip.amazonaws.com is answered here (asked: $*)" >&2
exit 7
`,
    { mode: 0o755 },
  );
  return bin;
}
