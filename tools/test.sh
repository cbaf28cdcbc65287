#!/bin/bash
# npm test: the tools the tests run are checked first (one line naming what is missing, in
# seconds); then the type check runs beside the tests. tsc keeps about one core busy for ten
# seconds, which the test files' start and last minutes leave free, and both must pass.
# Arguments go to vitest (npm test -- test/core/x.test.ts).
set -uo pipefail
bash tools/prerequisites.sh --check || exit 1

typecheck_log=$(mktemp)
trap 'rm -f "$typecheck_log"' EXIT
tsc --noEmit >"$typecheck_log" 2>&1 &
typecheck=$!

vitest run "$@"
tests=$?

wait "$typecheck"
typed=$?
if [ "$typed" -ne 0 ]; then
  cat "$typecheck_log"
  echo "npm test: the type check (tsc --noEmit) failed: the errors are above" >&2
fi
[ "$tests" -eq 0 ] && [ "$typed" -eq 0 ]
