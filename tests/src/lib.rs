//! Harness for end-to-end tests: start the real `braid` binary, find its ports, call it, stop it.

pub mod browser;
pub mod cluster;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a control plane may take to print its addresses.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `braid` binary under test: `BRAID_BIN` (set by `scripts/test`).
pub fn braid_bin() -> PathBuf {
    match std::env::var_os("BRAID_BIN") {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        _ => panic!("BRAID_BIN must name the built `braid` binary; run the tests via scripts/test"),
    }
}

/// A tool the tests need, from an environment variable set by `scripts/test`; fails loudly when missing.
pub fn tool(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        _ => panic!("{var} must name an executable; run the tests via scripts/test, which installs it"),
    }
}

/// A running `braid` process whose stdout announced its addresses.
pub struct Braid {
    child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Lines the process printed on stdout after the addresses.
    lines: mpsc::Receiver<String>,
}

impl Braid {
    /// Starts `braid ARGS…` and waits until it prints `gRPC  ADDR` and `HTTP  http://ADDR`.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(braid_bin());
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn braid");
        let rx = stdout_lines(&mut child);
        let (mut grpc, mut http) = (None, None);
        let deadline = Instant::now() + START_DEADLINE;
        while grpc.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    panic!("braid {args:?} did not announce its addresses: {e}");
                }
            };
            if let Some(a) = line.strip_prefix("gRPC  ") {
                grpc = Some(a.trim().parse().expect("gRPC address"));
            } else if let Some(a) = line.strip_prefix("HTTP  http://") {
                http = Some(a.trim().parse().expect("HTTP address"));
            }
        }
        let (Some(grpc), Some(http)) = (grpc, http) else { unreachable!() };
        Self { child: Some(child), grpc, http, lines: rx }
    }

    /// `http://ADDR` of the gRPC API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A tonic channel to the gRPC API.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to braid")
    }

    /// Sends SIGTERM and waits for the process to exit within `deadline`.
    pub fn terminate(mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.take().expect("running");
        signal(child.id(), "TERM");
        wait_child(child, deadline, "braid")
    }

    /// Lines printed after start-up so far.
    pub fn drain_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Lines printed after start-up, up to the first one `done` accepts (which fails the test
    /// if it does not come within [`START_DEADLINE`]).
    pub fn wait_lines(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("no awaited line ({e}); saw {seen:?}"));
            let last = done(&line);
            seen.push(line);
            if last {
                return seen;
            }
        }
    }
}

impl Drop for Braid {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines `child` prints on stdout, as they come, read by a thread of their own.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `child` to exit within `deadline`; kills it and fails the test otherwise.
fn wait_child(mut child: Child, deadline: Duration, what: &str) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(deadline) {
        Ok(status) => status.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{what} did not exit within {deadline:?}");
        }
    }
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`) to `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs `braid ARGS…` to completion (an operator verb) and returns its output.
pub fn braid(args: &[&str]) -> Output {
    Command::new(braid_bin()).args(args).stdin(Stdio::null()).output().expect("run braid")
}

/// stdout of a finished command as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository root (for example files under docs/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// Starts `braid dev --no-demo` on free ports with a fresh data dir.
pub fn start_dev(data_dir: &Path) -> Braid {
    let dir = data_dir.to_str().expect("utf-8 path");
    Braid::start(&["dev", "--insecure", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0", "--no-demo"], &[])
}

/// `braid dev` with its demo and auth on, as a newcomer starts it (it prints an admin token).
pub fn start_dev_secure(data_dir: &Path) -> Braid {
    let dir = data_dir.to_str().expect("utf-8 path");
    Braid::start(&["dev", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"], &[])
}

/// Starts `braid dev` with its demo worker and demo run (auth off).
pub fn start_dev_with_demo(data_dir: &Path) -> Braid {
    let dir = data_dir.to_str().expect("utf-8 path");
    Braid::start(&["dev", "--insecure", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"], &[])
}

/// The example worker binary under test: `BRAID_WORKER_BIN` (set by `scripts/test`).
pub fn worker_bin() -> PathBuf {
    tool("BRAID_WORKER_BIN")
}

/// A running `braid-example-worker` that printed `worker NAME connected`.
pub struct ExampleWorker {
    child: Option<Child>,
    pub name: String,
    pub ledger: PathBuf,
}

impl ExampleWorker {
    /// Starts a worker serving `types` (comma-separated) with `slots`, appending to `ledger`.
    pub fn start(endpoint: &str, name: &str, slots: u32, types: &str, ledger: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(worker_bin());
        cmd.args(["--endpoint", endpoint, "--name", name, "--slots", &slots.to_string(), "--types", types])
            .arg("--ledger")
            .arg(ledger)
            .args(extra);
        Self::spawn(cmd, name, ledger)
    }

    /// Starts a worker of any language from its command line; it must print `worker NAME connected`.
    pub fn spawn(mut cmd: Command, name: &str, ledger: &Path) -> Self {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn worker {name} ({cmd:?}): {e}"));
        let rx = stdout_lines(&mut child);
        let want = format!("worker {name} connected");
        loop {
            match rx.recv_timeout(START_DEADLINE) {
                Ok(line) if line.trim() == want => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    panic!("worker {name} did not connect: {e}");
                }
            }
        }
        Self { child: Some(child), name: name.to_owned(), ledger: ledger.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name to the worker.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Waits for the worker to exit within `deadline`.
    pub fn wait(mut self, deadline: Duration) -> ExitStatus {
        wait_child(self.child.take().expect("running"), deadline, &self.name)
    }
}

impl Drop for ExampleWorker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lines of a worker ledger (JSON objects), in order.
pub fn ledger_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Waits until some ledger line satisfies `pred`, checking whenever the file grows; panics after `deadline`.
pub fn wait_for_ledger(path: &Path, deadline: Duration, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let until = Instant::now() + deadline;
    loop {
        if ledger_lines(path).iter().any(&pred) {
            return;
        }
        assert!(Instant::now() < until, "timed out after {deadline:?} waiting for {what} in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `braid-example-worker --metrics-listen 127.0.0.1:0`, killed on drop.
pub struct MetricsWorker {
    child: Child,
    pub metrics: SocketAddr,
}

impl MetricsWorker {
    /// Starts the worker and waits until it printed `metrics http://ADDR` and `worker NAME connected`.
    pub fn start(endpoint: &str, name: &str, slots: u32, types: &str) -> Self {
        let mut child = Command::new(worker_bin())
            .args(["--endpoint", endpoint, "--name", name, "--slots", &slots.to_string(), "--types", types])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn braid-example-worker");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut metrics, mut connected) = (None, false);
        let want = format!("worker {name} connected");
        while metrics.is_none() || !connected {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.trim() == want => connected = true,
                Ok(line) => {
                    if let Some(a) = line.trim().strip_prefix("metrics http://") {
                        metrics = Some(a.parse().expect("metrics address"));
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("worker {name} did not print its metrics address and connect (--metrics-listen): {e}");
                }
            }
        }
        Self { child, metrics: metrics.unwrap() }
    }
}

impl Drop for MetricsWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` (with its query) from `addr`; returns the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    // HTTP/1.0: the server answers without chunked encoding and closes the connection.
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no header end in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, body.to_owned()))
}
