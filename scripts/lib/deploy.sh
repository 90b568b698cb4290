# shellcheck shell=bash
# Checks of deploy/ (Prometheus config and rules, Grafana dashboards, compose, Kubernetes) that run
# without a Docker engine or a cluster. Source after lib/common.sh, then call the functions.
#
#   ensure_prometheus     Debian's `prometheus` package (promtool + prometheus); exports PROMETHEUS_BIN
#   check_prometheus      promtool check config / check rules / test rules
#   check_deploy_files    YAML/JSON parsing, Grafana dashboard structure, compose and k8s structure,
#                         k8s schema validation (kubernetes-validate, offline schemas from PyPI),
#                         `docker-compose config` (Compose v2 built from its Go module; no engine needed)

# Pinned versions of the PyPI tools in the deploy venv.
DEPLOY_PYYAML_VERSION=6.0.3
DEPLOY_K8S_VALIDATE_VERSION=1.37.0
# Docker Compose, built from its Go module (its go.mod has replace/exclude directives, so
# `go install …@version` refuses it: build inside the downloaded module instead).
DOCKER_COMPOSE_VERSION=v2.40.3

ensure_prometheus() {
  if ! have promtool || ! have prometheus; then
    apt_install prometheus
    if ! have promtool || ! have prometheus; then
      die "promtool/prometheus still not on PATH after installing Debian's prometheus"
    fi
  fi
  PROMETHEUS_BIN="$(command -v prometheus)"
  export PROMETHEUS_BIN
  info "$(promtool --version 2>&1 | head -1)"
}

check_prometheus() {
  local dir="$BRAID_ROOT/deploy/prometheus"
  promtool check config "$dir/prometheus.yml"
  promtool check rules "$dir"/rules/*.yml
  (cd "$dir" && promtool test rules tests/*.yml)
}

# A venv with PyYAML and kubernetes-validate (which ships the Kubernetes JSON schemas, so the
# schema check runs offline). Prints its path.
ensure_deploy_venv() {
  local venv="${BRAID_DEPLOY_VENV:-$BRAID_CACHE/venv-deploy}"
  local reqs="pyyaml==$DEPLOY_PYYAML_VERSION kubernetes-validate==$DEPLOY_K8S_VALIDATE_VERSION"
  if [ ! -x "$venv/bin/python" ]; then
    info "creating venv $venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv $venv failed"
  fi
  local want stamp="$venv/.braid-deploy-requirements"
  want="$("$venv/bin/python" --version 2>&1) $reqs"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    info "installing $reqs into $venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $reqs >&2 ||
      die "pip install $reqs failed"
    printf '%s\n' "$want" >"$stamp"
  fi
  printf '%s\n' "$venv"
}

# Kubernetes versions the manifests are validated against (oldest supported, newest shipped).
DEPLOY_K8S_VERSIONS="1.29.0 1.37.0"

check_deploy_files() {
  local venv k
  venv=$(ensure_deploy_venv)
  "$venv/bin/python" "$BRAID_ROOT/deploy/tools/check_deploy.py" "$BRAID_ROOT/deploy"
  for k in $DEPLOY_K8S_VERSIONS; do
    # Every document except the Kustomization (not an API object), strict: unknown fields fail.
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$k" \
      "$BRAID_ROOT"/deploy/k8s/namespace.yaml "$BRAID_ROOT"/deploy/k8s/configmap.yaml \
      "$BRAID_ROOT"/deploy/k8s/migrate-job.yaml "$BRAID_ROOT"/deploy/k8s/control-plane.yaml \
      "$BRAID_ROOT"/deploy/k8s/worker.yaml ||
      die "deploy/k8s does not validate against Kubernetes $k"
    info "deploy/k8s: schema-valid (strict) for Kubernetes $k"
  done
  local compose
  compose=$(ensure_docker_compose)
  # `config` resolves and validates the file against the Compose spec; it never talks to an engine.
  "$compose" -f "$BRAID_ROOT/deploy/compose/compose.yaml" config --quiet ||
    die "deploy/compose/compose.yaml: docker-compose config failed"
  info "deploy/compose: docker-compose $DOCKER_COMPOSE_VERSION config passed"
}

# Prints the path of a standalone docker-compose binary of DOCKER_COMPOSE_VERSION (built once into
# $BRAID_CACHE/tools/bin; takes a few minutes the first time).
ensure_docker_compose() {
  local bin="$BRAID_CACHE/tools/bin/docker-compose" dir
  if [ ! -x "$bin" ] || [ "$(cat "$bin.version" 2>/dev/null || true)" != "$DOCKER_COMPOSE_VERSION" ]; then
    have go || die "go is required to build docker-compose"
    info "building docker-compose $DOCKER_COMPOSE_VERSION (Go module github.com/docker/compose/v2)"
    dir=$(go mod download -json "github.com/docker/compose/v2@$DOCKER_COMPOSE_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || die "go mod download github.com/docker/compose/v2@$DOCKER_COMPOSE_VERSION failed"
    mkdir -p "$(dirname "$bin")"
    (cd "$dir" && GOFLAGS=-mod=mod go build -o "$bin" ./cmd) >&2 || die "building docker-compose failed"
    printf '%s\n' "$DOCKER_COMPOSE_VERSION" >"$bin.version"
  fi
  printf '%s\n' "$bin"
}
