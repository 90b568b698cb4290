#!/usr/bin/env bash
# The TypeScript SDK's one test command: install, regenerate (must be unchanged), build, test.
#
#   BRAID_BIN=$HOME/.cache/braid/target/debug/braid clients/typescript/test.sh
#
# Needs only node (>= 20) and npm: buf and ts-proto come pinned from npm. The tests start a real
# `braid dev` from BRAID_BIN and fail (never skip) when it is not set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ -z "${BRAID_BIN:-}" ]; then
  echo "test.sh: BRAID_BIN must name the built braid binary (cargo build --bin braid)" >&2
  exit 1
fi
BRAID_BIN=$(cd "$(dirname "$BRAID_BIN")" && pwd)/$(basename "$BRAID_BIN")
export BRAID_BIN

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "==> ./generate (src/gen must be unchanged)"
./generate
if git rev-parse --git-dir >/dev/null 2>&1; then
  if ! git diff --exit-code -- src/gen; then
    echo "test.sh: src/gen is stale: run clients/typescript/generate and commit the result" >&2
    exit 1
  fi
  # Once src/gen is committed, a generated file that git does not know is stale too.
  untracked=$(git ls-files --others --exclude-standard -- src/gen)
  if [ -n "$(git ls-files -- src/gen)" ] && [ -n "$untracked" ]; then
    echo "test.sh: src/gen has files not in git (run ./generate and commit them):" >&2
    echo "$untracked" >&2
    exit 1
  fi
fi

echo "==> npm run build"
rm -rf dist
npm run build --silent

echo "==> npm test"
npm test --silent
