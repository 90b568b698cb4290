#!/usr/bin/env bash
# The Go client's checks: generated code up to date, go vet, and the tests, which start a real
# `braid dev` from $BRAID_BIN (they fail without it).
#
#   BRAID_BIN=~/.cache/braid/target/debug/braid clients/go/test.sh [go test args...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

step() { printf '==> %s\n' "$*"; }

step "./generate"
./generate

step "git diff --exit-code -- gen"
git diff --exit-code -- gen
# Once gen/ is committed, a newly generated file must be committed too.
if [ -n "$(git ls-files -- gen)" ]; then
  untracked=$(git ls-files --others --exclude-standard -- gen)
  if [ -n "$untracked" ]; then
    printf 'generated files not committed:\n%s\n' "$untracked" >&2
    exit 1
  fi
fi

step "gofmt -l"
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard -- '*.go' | grep -v '^gen/' || true))
if [ -n "$unformatted" ]; then
  printf 'not gofmt-formatted:\n%s\n' "$unformatted" >&2
  exit 1
fi

step "go vet ./..."
go vet ./...

step "go test -count=1 ./... (BRAID_BIN=${BRAID_BIN:-unset})"
go test -count=1 "$@" ./...
