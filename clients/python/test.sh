#!/usr/bin/env bash
# The Python client's tests, from a fresh machine with only python3:
#
#   BRAID_BIN=~/.cache/braid/target/debug/braid clients/python/test.sh [PYTEST ARGS]
#
# 1. creates/refreshes the venv (scripts/ensure-venv, pinned requirements-dev.txt),
# 2. installs the package (editable),
# 3. checks that src/braid/_gen is what `generate` makes from proto/ (regenerated into a temp dir),
# 4. lints (ruff check, ruff format --check; config in pyproject.toml),
# 5. runs pytest on tests/ against real `braid dev` processes started from $BRAID_BIN.
# No tests collected (pytest exit 5) is a failure like any other.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${BRAID_BIN:-}" ] || [ ! -x "$BRAID_BIN" ]; then
  echo "clients/python/test.sh: BRAID_BIN must name the built braid binary (got '${BRAID_BIN:-}')" >&2
  echo "  build it: CARGO_TARGET_DIR=~/.cache/braid/target cargo build --bin braid" >&2
  exit 1
fi
export BRAID_BIN

venv=$("$here/scripts/ensure-venv")
python="$venv/bin/python"
echo "python client: venv $venv ($("$python" --version 2>&1))"

# The pinned setuptools in the venv builds the package: no network needed for the build.
"$python" -m pip install --quiet --disable-pip-version-check --no-build-isolation -e "$here"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/generate" "$tmp/_gen"
if ! diff -r -x __pycache__ "$here/src/braid/_gen" "$tmp/_gen" >"$tmp/gen.diff"; then
  echo "clients/python/src/braid/_gen is out of date with proto/: run clients/python/generate" >&2
  head -50 "$tmp/gen.diff" >&2
  exit 1
fi
echo "python client: generated stubs are up to date"

cd "$here"
"$venv/bin/ruff" check --quiet .
"$venv/bin/ruff" format --check --quiet .
echo "python client: ruff check and format are clean"

set +e
"$python" -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "clients/python/test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
