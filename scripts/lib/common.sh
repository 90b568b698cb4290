# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/services. Source, don't execute.
#
# Everything here writes diagnostics to stderr so callers can keep stdout
# for machine-readable output (e.g. `scripts/services start` prints env lines).

# Absolute path of the repository root (scripts/lib/.. /..).
BRAID_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export BRAID_ROOT

# Where tools and build caches live (outside the repo).
BRAID_CACHE="${BRAID_CACHE:-${HOME:-/root}/.cache/braid}"

log() { printf '%s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command with root privileges (directly as root, else via sudo -n).
as_root() {
  if is_root; then
    "$@"
  elif have sudo; then
    sudo -n "$@"
  else
    die "need root to run: $*"
  fi
}

# Install Debian packages if apt-get exists. apt-get update runs once per call.
apt_install() {
  have apt-get || die "apt-get not available; please install: $*"
  log "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
    die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# Seconds since epoch (integer).
now_s() { date +%s; }

# Print "Nm SSs" (or "Ss") for a number of seconds.
fmt_duration() {
  local s=$1
  if [ "$s" -ge 60 ]; then
    printf '%dm%02ds' $((s / 60)) $((s % 60))
  else
    printf '%ds' "$s"
  fi
}

# Print N (default 1) distinct free TCP ports on 127.0.0.1, space separated.
# All sockets are held open until every port is chosen, so they are distinct.
free_ports() {
  local n=${1:-1}
  have python3 || die "python3 is required to pick free ports"
  python3 - "$n" <<'PY'
import socket, sys
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}
