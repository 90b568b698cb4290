//! TLS and mTLS on the gRPC port: `braid server` with a certificate, the Rust and Python example
//! workers and the CLI over `https://`, and clients without a (trusted) certificate refused.

use braid_e2e::cluster::Cluster;
use braid_e2e::{ExampleWorker, braid, repo_root, stderr, stdout, tool, worker_bin};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

/// How long a refused worker may take to report its failed connection.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(30);

/// Certificates in a temp dir: a CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate from the same CA, and a client certificate from another CA.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, ca) = authority("Braid test CA");
        let (other_ca_pem, other_ca) = authority("Some other CA");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca_pem);
        write("other-ca.pem", &other_ca_pem);
        for (name, issuer, sans, usage) in [
            ("server", &ca, vec!["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth),
            ("client", &ca, vec!["worker.braid.test"], ExtendedKeyUsagePurpose::ClientAuth),
            ("stranger", &other_ca, vec!["worker.braid.test"], ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let (cert, key) = leaf(issuer, &sans, usage);
            write(&format!("{name}.pem"), &cert);
            write(&format!("{name}.key"), &key);
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("utf-8 path").to_owned()
    }

    /// `--ca-cert CA` and, for `Some(name)`, `--client-cert NAME.pem --client-key NAME.key`.
    fn client_flags(&self, ca: &str, client: Option<&str>) -> Vec<String> {
        let mut flags = vec!["--ca-cert".to_owned(), self.path(ca)];
        if let Some(name) = client {
            flags.extend(["--client-cert".to_owned(), self.path(&format!("{name}.pem"))]);
            flags.extend(["--client-key".to_owned(), self.path(&format!("{name}.key"))]);
        }
        flags
    }
}

fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(issuer: &Issuer<'static, KeyPair>, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, sans[0]);
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn https(c: &Cluster) -> String {
    format!("https://{}", c.server.grpc)
}

/// `braid ARGS… --endpoint https://… FLAGS…`.
fn cli(c: &Cluster, args: &[&str], flags: &[String]) -> std::process::Output {
    let endpoint = https(c);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", endpoint.as_str()]);
    all.extend(flags.iter().map(String::as_str));
    braid(&all)
}

/// Applies a workflow of one Rust (`echo`) and one Python (`py-a`) task, runs it through the
/// CLI with `flags`, and checks that it succeeded.
fn run_both_languages(c: &Cluster, flags: &[String]) {
    let wf = c.dir.path().join("tls.yaml");
    std::fs::write(
        &wf,
        "name: tls\ntasks:\n  - {name: rs, task_type: echo}\n  - {name: py, task_type: py-a, depends_on: [rs]}\n",
    )
    .unwrap();
    let applied = cli(c, &["workflow", "apply", "-f", wf.to_str().unwrap()], flags);
    assert!(applied.status.success(), "apply over TLS: {}", stderr(&applied));
    let started = cli(c, &["run", "start", "tls", "--input", r#"{"value": 4}"#], flags);
    assert!(started.status.success(), "run start over TLS: {}", stderr(&started));
    let out = stdout(&started);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.strip_suffix(" created")))
        .unwrap_or_else(|| panic!("no run id in {out:?}"))
        .to_owned();
    // `run watch` follows the run to its end: exit code 0 only if it succeeded.
    let watched = cli(c, &["run", "watch", &id], flags);
    assert!(watched.status.success(), "run {id} over TLS: {}\n{}", stdout(&watched), stderr(&watched));
    let got = cli(c, &["run", "get", &id, "--output", "json"], flags);
    let run: serde_json::Value = serde_json::from_slice(&got.stdout).expect("run get JSON");
    assert!(run.to_string().contains(r#""path":["python"]"#), "the Python task ran: {run}");
}

fn rust_worker(c: &Cluster, name: &str, flags: &[String]) -> ExampleWorker {
    let mut extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    extra.extend(["--drain-timeout", "5s"]);
    ExampleWorker::start(&https(c), name, 2, "echo", &c.ledger(name), &extra)
}

fn python_worker(c: &Cluster, name: &str, flags: &[String]) -> ExampleWorker {
    let mut cmd = Command::new(tool("BRAID_PYTHON"));
    cmd.arg(repo_root().join("clients/python/examples/example_worker.py"))
        .args(["--endpoint", &https(c), "--name", name, "--slots", "2", "--types", "py-a"])
        .arg("--ledger")
        .arg(c.ledger(name))
        .args(flags);
    ExampleWorker::spawn(cmd, name, &c.ledger(name))
}

/// Starts a Rust example worker that the server must refuse, waits until it reports the failed
/// connection on stderr, and returns that line; the worker must never print `connected`.
fn refused_worker(c: &Cluster, name: &str, flags: &[String]) -> String {
    let mut child = Command::new(worker_bin())
        .args(["--endpoint", &https(c), "--name", name, "--types", "echo"])
        .args(flags)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn braid-example-worker");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = loop {
        match rx.recv_timeout(REFUSAL_DEADLINE) {
            Ok(line) if line.contains("reconnecting after a delay") => break line,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("worker {name} did not report a failed connection: {e}");
            }
        }
    };
    let _ = child.kill();
    let out = child.wait_with_output().expect("worker output");
    assert!(!stdout(&out).contains("connected"), "worker {name} must not connect: {}", stdout(&out));
    line
}

fn failure(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure, got success: {}", stdout(o));
    eprintln!("refused as expected: {}", stderr(o).trim());
    stderr(o)
}

fn server_tls_flags(pki: &Pki, mutual: bool) -> Vec<String> {
    let mut flags = vec!["--tls-cert".into(), pki.path("server.pem"), "--tls-key".into(), pki.path("server.key")];
    if mutual {
        flags.extend(["--tls-client-ca".into(), pki.path("ca.pem")]);
    }
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_rust_and_python_workers_and_the_cli() {
    let pki = Pki::new();
    let server_flags = server_tls_flags(&pki, false);
    let c = Cluster::start_with(&server_flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let trust = pki.client_flags("ca.pem", None);
    let _rs = rust_worker(&c, "rs-tls", &trust);
    let _py = python_worker(&c, "py-tls", &trust);
    run_both_languages(&c, &trust);

    // A plaintext client is refused: the port speaks TLS only.
    let plain = braid(&["workflow", "list", "--endpoint", &c.server.endpoint()]);
    let why = failure(&plain);
    assert!(why.contains("error:"), "{why}");
    // A client that trusts another CA refuses the server.
    let why = failure(&cli(&c, &["workflow", "list"], &pki.client_flags("other-ca.pem", None)));
    assert!(why.contains("cannot reach") && why.to_lowercase().contains("certificate"), "{why}");
    // An https:// endpoint without --ca-cert is an error that says what is missing.
    let why = failure(&cli(&c, &["workflow", "list"], &[]));
    assert!(why.contains("--ca-cert"), "{why}");
    // TLS flags with an http:// endpoint are a mistake, not a silent plaintext connection.
    let (plain, ca) = (c.server.endpoint(), pki.path("ca.pem"));
    let why = failure(&braid(&["workflow", "list", "--endpoint", &plain, "--ca-cert", &ca]));
    assert!(why.contains("not https://"), "{why}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admits_only_clients_with_a_certificate_from_its_ca() {
    let pki = Pki::new();
    let server_flags = server_tls_flags(&pki, true);
    let c = Cluster::start_with(&server_flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let admitted = pki.client_flags("ca.pem", Some("client"));
    let _rs = rust_worker(&c, "rs-mtls", &admitted);
    let _py = python_worker(&c, "py-mtls", &admitted);
    run_both_languages(&c, &admitted);

    // Without a client certificate, or with one from another CA: refused.
    for (who, flags) in [
        ("no certificate", pki.client_flags("ca.pem", None)),
        ("another CA", pki.client_flags("ca.pem", Some("stranger"))),
    ] {
        let why = failure(&cli(&c, &["workflow", "list"], &flags));
        assert!(why.contains("transport error"), "{who}: {why}");
        let line = refused_worker(&c, &format!("refused-{}", who.replace(' ', "-")), &flags);
        eprintln!("worker refused as expected: {line}");
        assert!(line.contains("error="), "{who}: {line}");
    }
    // Only the two admitted workers ever connected.
    let listed = cli(&c, &["worker", "list", "--output", "json"], &admitted);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(text.contains("rs-mtls") && text.contains("py-mtls") && !text.contains("refused-"), "{text}");
    c.stop().await;
}

#[test]
fn bad_tls_files_stop_the_server_before_it_binds() {
    let pki = Pki::new();
    let missing = pki.dir.path().join("missing.pem");
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let out = braid(&[
        "dev",
        "--data-dir",
        dir,
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--tls-cert",
        missing.to_str().unwrap(),
        "--tls-key",
        &pki.path("ca.pem"),
    ]);
    let why = failure(&out);
    assert!(why.contains(&format!("--tls-cert {}: cannot read", missing.display())), "{why}");
    assert!(why.contains(&format!("--tls-key {}: holds no PEM private key", pki.path("ca.pem"))), "{why}");
}
