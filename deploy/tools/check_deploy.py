#!/usr/bin/env python3
"""Offline structural checks of deploy/ (no Docker engine, no cluster): run by scripts/test.

  python3 deploy/tools/check_deploy.py [DEPLOY_DIR]

Every YAML and JSON file parses; the compose file's references hold (services, depends_on,
bind-mount sources, build context and Dockerfile, Prometheus scrape targets and the Grafana
datasource pointing at compose services); the Kubernetes manifests hang together (selectors
match pod labels, Services/PDBs/HPAs point at existing workloads, probes use gRPC health on the
gRPC container port, ConfigMap references exist, Secrets are referenced and not shipped);
the Dockerfile is multi-stage and runs as a non-root user. Schema validation of the manifests
is done separately with kubernetes-validate (see scripts/lib/deploy.sh).
"""

import filecmp
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def load_all(deploy):
    docs = {}
    for p in sorted(deploy.rglob("*")):
        if p.suffix in (".yml", ".yaml"):
            try:
                docs[p] = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
            except yaml.YAMLError as e:
                problem(p, f"not YAML: {e}")
        elif p.suffix == ".json":
            try:
                docs[p] = [json.loads(p.read_text())]
            except json.JSONDecodeError as e:
                problem(p, f"not JSON: {e}")
    return docs


def check_compose(deploy, docs):
    path = deploy / "compose/compose.yaml"
    (compose,) = docs[path]
    services = compose.get("services") or {}
    want = {"postgres", "redis", "migrate", "braid-1", "braid-2", "worker-rust", "worker-python",
            "worker-typescript", "worker-go", "prometheus", "grafana"}
    for s in sorted(want - set(services)):
        problem(path, f"service {s} missing")
    host_ports = {}
    for name, svc in services.items():
        if not (svc.get("image") or svc.get("build")):
            problem(path, f"{name}: neither image nor build")
        deps = svc.get("depends_on") or []
        for d in (deps if isinstance(deps, list) else deps.keys()):
            if d not in services:
                problem(path, f"{name}: depends_on unknown service {d}")
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = (path.parent / build.get("context", ".")).resolve()
            if not ctx.is_dir():
                problem(path, f"{name}: build context {ctx} missing")
            if not (ctx / build.get("dockerfile", "Dockerfile")).is_file():
                problem(path, f"{name}: Dockerfile {build.get('dockerfile')} missing under {ctx}")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("."):
                if not (path.parent / src).exists():
                    problem(path, f"{name}: bind mount source {src} does not exist")
            elif src and src not in (compose.get("volumes") or {}):
                problem(path, f"{name}: named volume {src} not declared")
        for p in svc.get("ports") or []:
            host = str(p).split(":")[0]
            if host in host_ports:
                problem(path, f"{name}: host port {host} also used by {host_ports[host]}")
            host_ports[host] = name
    cps = [n for n in ("braid-1", "braid-2") if n in services]
    for n in cps:
        cmd = services[n].get("command")
        if cmd != ["server"]:
            problem(path, f"{n}: command should be ['server'], is {cmd}")
        env = services[n].get("environment") or {}
        for k in ("BRAID_DATABASE_URL", "BRAID_REDIS_URL", "BRAID_GRPC_LISTEN", "BRAID_HTTP_LISTEN"):
            if k not in env:
                problem(path, f"{n}: environment lacks {k}")
        # Control planes share large payloads: one object store, a volume both mount.
        store = env.get("BRAID_OBJECT_STORE", "")
        if not store.startswith("file://") and not store.startswith("s3://"):
            problem(path, f"{n}: BRAID_OBJECT_STORE should name a shared store, is {store!r}")
        if store.startswith("file://"):
            mounted = {v.split(":")[1] for v in services[n].get("volumes") or [] if isinstance(v, str)}
            if store.removeprefix("file://") not in mounted:
                problem(path, f"{n}: BRAID_OBJECT_STORE {store} is not a mounted volume")
        if (services[n].get("depends_on") or {}).get("migrate", {}).get("condition") != "service_completed_successfully":
            problem(path, f"{n}: should wait for migrate to complete")
    # Prometheus scrapes compose services; Grafana's datasource points at the prometheus service.
    (prom,) = docs[deploy / "prometheus/prometheus.yml"]
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    if "braid" not in jobs:
        problem(deploy / "prometheus/prometheus.yml", "no job named braid (BraidControlPlaneDown watches it)")
    for job in jobs.values():
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host = t.rsplit(":", 1)[0]
                if host != "localhost" and host not in services:
                    problem(deploy / "prometheus/prometheus.yml", f"target {t}: no compose service {host}")
    braid_targets = {t for sc in jobs.get("braid", {}).get("static_configs", []) for t in sc.get("targets", [])}
    for n in cps:
        if f"{n}:7401" not in braid_targets:
            problem(deploy / "prometheus/prometheus.yml", f"job braid does not scrape {n}:7401")
    ds_path = deploy / "grafana/provisioning/datasources/prometheus.yml"
    (ds,) = docs[ds_path]
    for d in ds.get("datasources", []):
        m = re.match(r"https?://([^:/]+)", d.get("url", ""))
        if not m or m.group(1) not in services:
            problem(ds_path, f"datasource url {d.get('url')} is not a compose service")
    # Grafana mounts the dashboards where the provider looks for them.
    (prov,) = docs[deploy / "grafana/provisioning/dashboards/braid.yml"]
    paths = {p["options"]["path"] for p in prov.get("providers", [])}
    mounts = {v.split(":")[1] for v in services.get("grafana", {}).get("volumes", []) if isinstance(v, str)}
    for p in paths - mounts:
        problem(path, f"grafana: dashboards provider path {p} is not mounted")
    # The rules directory Prometheus loads is mounted next to its config.
    pmounts = {v.split(":")[1] for v in services.get("prometheus", {}).get("volumes", []) if isinstance(v, str)}
    for rf in prom.get("rule_files", []):
        if not any(str(Path("/etc/prometheus") / Path(rf).parent) == m for m in pmounts):
            problem(path, f"prometheus: rule_files {rf} not mounted under /etc/prometheus")


def check_dockerfile(deploy):
    path = deploy / "compose/Dockerfile"
    text = path.read_text()
    froms = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    if len(froms) < 2:
        problem(path, "not multi-stage")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem(path, "the final stage must run as a non-root USER")
    if "--locked" not in text:
        problem(path, "cargo build should use --locked")
    if not (deploy / "compose/Dockerfile.dockerignore").is_file():
        problem(path, "Dockerfile.dockerignore missing (target/ would be sent as context)")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_k8s(deploy, docs):
    objs = []
    for p, ds in docs.items():
        if p.parent == deploy / "k8s":
            for d in ds:
                if isinstance(d, dict) and "kind" in d and d.get("kind") != "Kustomization":
                    objs.append((p, d))
    by_kind = {}
    for p, d in objs:
        by_kind.setdefault(d["kind"], []).append((p, d))
    for kind in ("Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        if kind not in by_kind:
            problem(deploy / "k8s", f"no {kind}")
    configmaps = {d["metadata"]["name"] for _, d in by_kind.get("ConfigMap", [])}
    for _, d in by_kind.get("Secret", []):
        problem(deploy / "k8s", f"Secret {d['metadata']['name']} shipped: reference Secrets, do not ship them")
    workloads = by_kind.get("Deployment", []) + by_kind.get("Job", [])
    deployments = {d["metadata"]["name"]: d for _, d in by_kind.get("Deployment", [])}
    for p, d in workloads:
        name = d["metadata"]["name"]
        tpl = d["spec"]["template"]
        labels = tpl["metadata"].get("labels", {})
        sel = d["spec"].get("selector", {}).get("matchLabels")
        if d["kind"] == "Deployment" and not labels_match(sel, labels):
            problem(p, f"{name}: selector {sel} does not match pod labels {labels}")
        spec = tpl["spec"]
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            problem(p, f"{name}: pod should set runAsNonRoot")
        for c in spec.get("containers", []):
            for ef in c.get("envFrom", []):
                ref = ef.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    problem(p, f"{name}: envFrom ConfigMap {ref} not defined")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef", {}).get("name")
                if ref and ref not in configmaps:
                    problem(p, f"{name}: ConfigMap {ref} not defined")
            if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
                problem(p, f"{name}/{c['name']}: resources requests and limits")
            if c.get("args", [None])[0] == "server":
                ports = {pt.get("name"): pt["containerPort"] for pt in c.get("ports", [])}
                for probe in ("readinessProbe", "livenessProbe"):
                    g = c.get(probe, {}).get("grpc")
                    if not g:
                        problem(p, f"{name}: {probe} should be a gRPC health probe")
                    elif g.get("port") != ports.get("grpc"):
                        problem(p, f"{name}: {probe} port {g.get('port')} is not the grpc port {ports.get('grpc')}")
                env = {e["name"] for e in c.get("env", [])}
                for k in ("BRAID_DATABASE_URL", "BRAID_REDIS_URL"):
                    if k not in env:
                        problem(p, f"{name}: {k} not set (from the Secret)")
                cm = [ef["configMapRef"]["name"] for ef in c.get("envFrom", []) if "configMapRef" in ef]
                data = {}
                for _, m in by_kind.get("ConfigMap", []):
                    if m["metadata"]["name"] in cm:
                        data.update(m.get("data", {}))
                listen = data.get("BRAID_GRPC_LISTEN", "")
                if not listen.endswith(f":{ports.get('grpc')}"):
                    problem(p, f"{name}: BRAID_GRPC_LISTEN {listen!r} does not match the grpc port {ports.get('grpc')}")
    pods = [(d["metadata"]["name"], d["spec"]["template"]["metadata"].get("labels", {})) for _, d in workloads]
    for kind in ("Service", "PodDisruptionBudget"):
        for p, d in by_kind.get(kind, []):
            sel = d["spec"]["selector"] if kind == "Service" else d["spec"]["selector"].get("matchLabels")
            if not any(labels_match(sel, lab) for _, lab in pods):
                problem(p, f"{kind} {d['metadata']['name']}: selector {sel} matches no workload")
    for p, d in by_kind.get("HorizontalPodAutoscaler", []):
        ref = d["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
            problem(p, f"HPA {d['metadata']['name']}: target {ref} not a Deployment here")
    kust = deploy / "k8s/kustomization.yaml"
    if kust in docs:
        listed = set(docs[kust][0].get("resources", []))
        files = {p.name for p in (deploy / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"}
        for f in sorted(files ^ listed):
            problem(kust, f"{f}: listed in resources and present on disk must agree")


def check_dashboards_generated(deploy):
    committed = deploy / "grafana/dashboards"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(deploy / "tools/gen_dashboards.py"), tmp], check=True)
        made = sorted(p.name for p in Path(tmp).glob("*.json"))
        have = sorted(p.name for p in committed.glob("*.json"))
        if made != have:
            problem(committed, f"dashboards {have} differ from those gen_dashboards.py makes {made}")
        for name in made:
            if name in have and not filecmp.cmp(Path(tmp) / name, committed / name, shallow=False):
                problem(committed / name, "differs from deploy/tools/gen_dashboards.py output: regenerate")


def main():
    deploy = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    docs = load_all(deploy)
    n = sum(len(v) for v in docs.values())
    if not problems:
        check_compose(deploy, docs)
        check_dockerfile(deploy)
        check_k8s(deploy, docs)
        check_dashboards_generated(deploy)
    for p in problems:
        print(f"deploy check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"deploy check: {len(docs)} YAML/JSON files ({n} documents) parse; compose, Dockerfile and k8s references hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
