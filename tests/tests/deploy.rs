//! `deploy/` against the real binary: a real Prometheus (Debian's `prometheus`, `PROMETHEUS_BIN`)
//! scrapes a running `braid dev` and evaluates the shipped rules; every metric name the dashboards
//! and rules use is one the binary exports; the Grafana dashboards are well-formed.

use braid_e2e::http_get;
use braid_e2e::{Braid, ExampleWorker, MetricsWorker, braid, repo_root, stderr, tool, wait_for_ledger};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The datasource uid of deploy/grafana/provisioning/datasources/prometheus.yml.
const DATASOURCE_UID: &str = "braid-prometheus";

/// Metrics that `worker-rs` exports on its own metrics port, not the control plane; they are
/// checked against a `braid-example-worker --metrics-listen` scrape.
const WORKER_SDK_METRICS: &[&str] = &["braid_worker_tasks_total", "braid_worker_handler_duration_seconds"];

const POLL: Duration = Duration::from_millis(250);

/// Series of an instant query: labels and value.
type Series = Vec<(BTreeMap<String, String>, f64)>;

/// Names and the files (relative to the repository) that use each.
type Uses = BTreeMap<String, BTreeSet<String>>;

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

// --- Prometheus ---------------------------------------------------------------------------------

/// A `prometheus` process scraping one braid target every second, with the shipped rules loaded.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Self {
        let bin = tool("PROMETHEUS_BIN");
        let rules = repo_root().join("deploy/prometheus/rules");
        let mut dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}/*.yml\nscrape_configs:\n  - job_name: braid\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut p = Self { child, addr, dir };
            if p.wait_ready(Duration::from_secs(30)) {
                return p;
            }
            // Lost the race for the port (or failed otherwise): show why, try another port.
            eprintln!("prometheus on {addr} did not become ready:\n{}", p.log());
            let _ = p.child.kill();
            let _ = p.child.wait();
            dir = std::mem::replace(&mut p.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("prometheus did not start");
    }

    fn wait_ready(&mut self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if matches!(http_get(self.addr, "/-/ready"), Ok((200, _))) {
                return true;
            }
            std::thread::sleep(POLL);
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `data` of an API answer, or why there is none.
    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path)?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("{path}: HTTP {status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// An instant query: each series' labels and value.
    fn query(&self, promql: &str) -> Result<Series, String> {
        let data = self.api(&format!("/api/v1/query?query={}", urlencode(promql)))?;
        let mut out = Vec::new();
        for r in data["result"].as_array().cloned().unwrap_or_default() {
            let labels = r["metric"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default();
            let value = r["value"][1].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
            out.push((labels, value));
        }
        Ok(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks on one query's answer; `Err` says what is wrong (for the report at the deadline).
type Check = (&'static str, fn(&[(BTreeMap<String, String>, f64)]) -> Result<(), String>);

fn one_value(r: &[(BTreeMap<String, String>, f64)]) -> Result<f64, String> {
    match r {
        [(_, v)] => Ok(*v),
        [] => Err("no series".into()),
        _ => Err(format!("{} series, expected 1: {r:?}", r.len())),
    }
}

fn at_least(r: &[(BTreeMap<String, String>, f64)], min: f64) -> Result<(), String> {
    let v = one_value(r)?;
    if v >= min { Ok(()) } else { Err(format!("{v} < {min}")) }
}

fn dev_with_demo(data: &Path) -> Braid {
    let dir = data.to_str().expect("utf-8 path");
    // A short lease TTL makes workers heartbeat every second; a fast reaper makes leases expire promptly.
    Braid::start(
        &[
            "dev",
            "--insecure",
            "--data-dir",
            dir,
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--lease-ttl",
            "3s",
            "--reaper-interval",
            "200ms",
        ],
        &[],
    )
}

#[test]
fn a_real_prometheus_scrapes_braid_dev_and_evaluates_the_shipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dev_with_demo(&dir.path().join("data"));
    // A task of a type no worker serves stays ready: its queue has depth and lag.
    apply_and_trigger(
        &dev,
        dir.path(),
        "deploy-unserved",
        "name: deploy-unserved\ntasks:\n  - {name: u, task_type: deploy-unserved}\n",
        "{}",
    );
    let prom = Prometheus::start(dev.http);

    let checks: Vec<Check> = vec![
        ("up{job=\"braid\"}", |r| if one_value(r)? == 1.0 { Ok(()) } else { Err("target down".into()) }),
        ("count(braid_build_info{version=~\".+\"} == 1)", |r| at_least(r, 1.0)),
        ("sum(braid_runs_started_total{workflow=\"braid-demo\"})", |r| at_least(r, 1.0)),
        ("sum(braid_runs_finished_total{workflow=\"braid-demo\",outcome=\"succeeded\"})", |r| at_least(r, 1.0)),
        // The demo DAG has five tasks, each sleeping 300 ms.
        ("sum(braid_tasks_finished_total{outcome=\"succeeded\"})", |r| at_least(r, 5.0)),
        ("sum(braid_task_attempts_total{outcome=\"succeeded\"})", |r| at_least(r, 5.0)),
        ("sum(braid_task_schedule_to_start_seconds_count)", |r| at_least(r, 5.0)),
        ("sum(braid_task_execution_seconds_count)", |r| at_least(r, 5.0)),
        ("sum(braid_task_execution_seconds_sum)", |r| at_least(r, 1.5)),
        (
            "sum(braid_task_schedule_to_start_seconds_bucket{le=\"+Inf\"}) - sum(braid_task_schedule_to_start_seconds_count)",
            |r| {
                if one_value(r)? == 0.0 { Ok(()) } else { Err("+Inf bucket differs from _count".into()) }
            },
        ),
        ("histogram_quantile(0.99, sum by (le) (braid_task_schedule_to_start_seconds_bucket))", |r| {
            let v = one_value(r)?;
            if (0.0..=30.0).contains(&v) { Ok(()) } else { Err(format!("p99 schedule-to-start {v}s")) }
        }),
        ("braid_workers_connected", |r| at_least(r, 1.0)),
        ("sum(braid_worker_slots{task_type=\"demo-map\"})", |r| at_least(r, 1.0)),
        ("sum(braid_worker_heartbeats_total)", |r| at_least(r, 1.0)),
        ("sum(braid_grpc_requests_total)", |r| at_least(r, 1.0)),
        ("braid_queue_depth{task_type=\"deploy-unserved\"}", |r| {
            if one_value(r)? == 1.0 { Ok(()) } else { Err("expected one ready task".into()) }
        }),
        ("braid_queue_lag_seconds{task_type=\"deploy-unserved\"}", |r| at_least(r, 0.5)),
        ("sum(braid_worker_slots{task_type=\"deploy-unserved\"}) or vector(0)", |r| {
            if one_value(r)? == 0.0 { Ok(()) } else { Err("no worker serves deploy-unserved".into()) }
        }),
        // A recording rule of deploy/prometheus/rules evaluated on the real series (NaN while
        // no new task started in its window is fine: 0/0).
        ("braid:task_schedule_to_start_slow:ratio_rate5m", |r| {
            let v = one_value(r)?;
            if v.is_nan() || (0.0..=1.0).contains(&v) { Ok(()) } else { Err(format!("ratio {v}")) }
        }),
        ("ALERTS{alertname=\"BraidControlPlaneDown\"}", |r| {
            if r.is_empty() { Ok(()) } else { Err(format!("fires: {r:?}")) }
        }),
    ];

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last: Vec<(&str, Result<(), String>)>;
    loop {
        last = checks.iter().map(|(q, check)| (*q, prom.query(q).and_then(|r| check(&r)))).collect();
        let rules_ok = rules_evaluated(&prom);
        if last.iter().all(|(_, r)| r.is_ok()) && rules_ok.is_ok() {
            break;
        }
        if Instant::now() >= deadline {
            last.push(("every rule group loaded and evaluated", rules_ok));
            let report: Vec<String> = last
                .iter()
                .map(|(q, r)| match r {
                    Ok(()) => format!("  ok    {q}"),
                    Err(e) => format!("  FAIL  {q}: {e}"),
                })
                .collect();
            panic!(
                "Prometheus did not see sensible braid series within 90 s:\n{}\n\nprometheus log:\n{}",
                report.join("\n"),
                prom.log()
            );
        }
        std::thread::sleep(POLL);
    }
    let status = dev.terminate(Duration::from_secs(15));
    assert!(status.success(), "braid dev should exit cleanly, got {status}");
}

/// Every rule of deploy/prometheus/rules is loaded, has been evaluated, and is healthy.
fn rules_evaluated(prom: &Prometheus) -> Result<(), String> {
    let data = prom.api("/api/v1/rules")?;
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    let names: BTreeSet<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    for want in ["braid-sli", "braid-aggregates", "braid-slo", "braid-queues", "braid-availability"] {
        if !names.contains(want) {
            return Err(format!("rule group {want} not loaded (have {names:?})"));
        }
    }
    for g in &groups {
        for r in g["rules"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("?");
            if r["health"] != "ok" {
                return Err(format!("rule {name}: health {} {}", r["health"], r["lastError"]));
            }
        }
    }
    Ok(())
}

// --- names used by deploy/ against names exported ----------------------------------------------

/// The files whose metric names must exist: dashboards, Prometheus config, rules and rule tests.
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "yml" | "yaml")) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("deploy/grafana"), &mut out);
    walk(&repo_root().join("deploy/prometheus"), &mut out);
    out.sort();
    out
}

/// Identifier-like tokens (`[A-Za-z0-9_:]+`) of a text.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).filter(|t| !t.is_empty())
}

/// Metric names (`braid_…`) and recording-rule names (`…:…` mentioning braid) used by deploy/,
/// each with the files that use it; and the recording rules defined.
fn names_used() -> (Uses, Uses, BTreeSet<String>) {
    let (mut metrics, mut recorded, mut defined) = (BTreeMap::new(), BTreeMap::new(), BTreeSet::new());
    let root = repo_root();
    for f in deploy_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("- record:").or_else(|| line.trim().strip_prefix("record:")) {
                defined.insert(name.trim().to_owned());
            }
        }
        for t in tokens(&text) {
            if t.contains(':') && t.contains("braid") {
                recorded.entry(t.to_owned()).or_insert_with(BTreeSet::new).insert(rel.clone());
            } else if t.starts_with("braid_") {
                metrics.entry(t.to_owned()).or_insert_with(BTreeSet::new).insert(rel.clone());
            }
        }
    }
    (metrics, recorded, defined)
}

/// `# TYPE name kind` lines of a Prometheus text exposition.
fn exported(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// Whether `name` is a family of `types` or a series of one of its histograms/summaries.
fn is_exported(name: &str, types: &BTreeMap<String, String>) -> bool {
    if types.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|base| types.get(base))
            .is_some_and(|kind| kind == "histogram" || (kind == "summary" && *suffix != "_bucket"))
    })
}

fn scrape(addr: SocketAddr) -> BTreeMap<String, String> {
    match http_get(addr, "/metrics") {
        Ok((200, body)) => exported(&body),
        other => panic!("GET http://{addr}/metrics: {other:?}"),
    }
}

fn apply_and_trigger(dev: &Braid, dir: &Path, name: &str, yaml: &str, input: &str) {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let ep = dev.endpoint();
    let out = braid(&["workflow", "apply", "-f", file.to_str().unwrap(), "--endpoint", &ep]);
    assert!(out.status.success(), "apply {name}: {}", stderr(&out));
    let out = braid(&["run", "start", name, "--input", input, "--endpoint", &ep]);
    assert!(out.status.success(), "start {name}: {}", stderr(&out));
}

#[test]
fn dashboards_and_rules_use_only_metrics_the_binary_exports() {
    let (used, recorded, defined) = names_used();
    assert!(used.len() >= 20, "expected the dashboards and rules to use the braid_* families, found {used:?}");

    // Recording-rule names must be defined by a rule.
    let undefined: Vec<String> = recorded
        .iter()
        .filter(|(n, _)| !defined.contains(*n))
        .map(|(n, files)| format!("{n} (in {files:?})"))
        .collect();
    assert!(undefined.is_empty(), "recording rules used but not defined:\n  {}", undefined.join("\n  "));

    // Labelled families show on /metrics only once they have a series: drive the binary through
    // the demo run, a retried and dead-lettered task, and a lease that expires.
    let dir = tempfile::tempdir().unwrap();
    let dev = dev_with_demo(&dir.path().join("data"));
    let w = MetricsWorker::start(&dev.endpoint(), "deploy-fail", 2, "fail,echo");
    apply_and_trigger(
        &dev,
        dir.path(),
        "deploy-dl",
        "name: deploy-dl\ntasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 2, initial_backoff: 50ms, jitter: false}}\n  - {name: after, task_type: echo, depends_on: [f]}\n",
        r#"{"always": true}"#,
    );
    let zombie =
        ExampleWorker::start(&dev.endpoint(), "deploy-zombie", 1, "sleep", &dir.path().join("zombie.jsonl"), &[]);
    apply_and_trigger(
        &dev,
        dir.path(),
        "deploy-slow",
        "name: deploy-slow\ntasks:\n  - {name: s, task_type: sleep, retry: {max_attempts: 2, initial_backoff: 10ms}}\n",
        r#"{"ms": 20000}"#,
    );
    wait_for_ledger(&zombie.ledger, Duration::from_secs(30), "zombie start", |l| l["event"] == "start");
    zombie.signal("STOP");

    // Wait (bounded) until every used control-plane name is exported; report what is missing.
    let is_worker_sdk = |n: &str| WORKER_SDK_METRICS.iter().any(|w| n.starts_with(w));
    let (worker_used, control_plane_used): (Vec<&String>, Vec<&String>) = used.keys().partition(|n| is_worker_sdk(n));
    let deadline = Instant::now() + Duration::from_secs(45);
    let (mut types, mut worker_types) = (scrape(dev.http), scrape(w.metrics));
    loop {
        let missing = control_plane_used.iter().filter(|n| !is_exported(n, &types)).count()
            + worker_used.iter().filter(|n| !is_exported(n, &worker_types)).count();
        if missing == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
        (types, worker_types) = (scrape(dev.http), scrape(w.metrics));
    }
    zombie.signal("CONT");
    drop(zombie);
    drop(w);

    let mut missing: Vec<String> = control_plane_used
        .iter()
        .filter(|n| !is_exported(n, &types))
        .map(|n| format!("{n} (in {:?}), not exported by braid dev", used[*n]))
        .collect();
    missing.extend(
        worker_used
            .iter()
            .filter(|n| !is_exported(n, &worker_types))
            .map(|n| format!("{n} (in {:?}), not exported by braid-example-worker --metrics-listen", used[*n])),
    );
    let unused: Vec<&String> = types
        .keys()
        .filter(|t| {
            !used.keys().any(|u| {
                u == *t || u.strip_prefix(t.as_str()).is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
            })
        })
        .collect();
    eprintln!("exported by braid dev: {} families; not used by any dashboard or rule: {unused:?}", types.len());
    eprintln!("worker-rs metrics used: {worker_used:?}; the worker exports {:?}", worker_types.keys());
    assert!(
        missing.is_empty(),
        "deploy/ uses metrics that the binaries do not export:\n  {}\n\nbraid dev exports: {:?}\nthe worker exports: {:?}",
        missing.join("\n  "),
        types.keys().collect::<Vec<_>>(),
        worker_types.keys().collect::<Vec<_>>()
    );
}

// --- the dashboards' structure (no process needed) -------------------------------------------------

#[test]
fn grafana_dashboards_are_well_formed_and_use_the_provisioned_datasource() {
    let root = repo_root().join("deploy/grafana");
    let provisioning = std::fs::read_to_string(root.join("provisioning/datasources/prometheus.yml")).unwrap();
    assert!(
        provisioning.contains(&format!("uid: {DATASOURCE_UID}")),
        "datasource uid {DATASOURCE_UID} not provisioned"
    );
    let dashboards: Vec<PathBuf> = deploy_files()
        .into_iter()
        .filter(|p| p.starts_with(&root) && p.extension().is_some_and(|e| e == "json"))
        .collect();
    let titles: BTreeSet<String> = dashboards
        .iter()
        .map(|p| {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap())
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            let name = p.display().to_string();
            assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40), "{name}: uid");
            assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30), "{name}: schemaVersion");
            let panels = d["panels"].as_array().unwrap_or_else(|| panic!("{name}: panels"));
            let mut ids = BTreeSet::new();
            let mut queries = 0;
            for p in panels {
                let title = p["title"].as_str().unwrap_or("?");
                assert!(ids.insert(p["id"].as_u64().expect("panel id")), "{name}: duplicate panel id in {title}");
                assert!(p["gridPos"]["w"].as_u64().is_some_and(|w| w > 0 && w <= 24), "{name}/{title}: gridPos");
                if p["type"] == "row" {
                    continue;
                }
                assert_eq!(p["datasource"]["uid"], DATASOURCE_UID, "{name}/{title}: datasource");
                let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{name}/{title}: targets"));
                assert!(!targets.is_empty(), "{name}/{title}: no targets");
                let mut refs = BTreeSet::new();
                for t in targets {
                    assert!(t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{name}/{title}: empty expr");
                    assert!(refs.insert(t["refId"].as_str().unwrap_or("").to_owned()), "{name}/{title}: refId");
                    assert_eq!(t["datasource"]["uid"], DATASOURCE_UID, "{name}/{title}: target datasource");
                    queries += 1;
                }
            }
            assert!(queries >= 6, "{name}: only {queries} queries");
            d["title"].as_str().unwrap().to_owned()
        })
        .collect();
    for want in ["Braid / Overview", "Braid / Queues and workers", "Braid / Failures", "Braid / API"] {
        assert!(titles.contains(want), "dashboard {want:?} missing: {titles:?}");
    }
}
