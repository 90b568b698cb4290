//! Child processes of a drill: `braid server` control planes and example workers, started, signalled, reaped.

use super::DrillError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;

/// How long a process may take to announce itself.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// Sends a signal by name (`KILL`, `TERM`, `STOP`, `CONT`) with kill(1).
pub async fn signal(pid: u32, name: &str) -> Result<(), DrillError> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .await
        .map_err(|e| DrillError::Process { what: format!("kill -{name} {pid}"), reason: e.to_string() })?;
    if status.success() {
        Ok(())
    } else {
        Err(DrillError::Process { what: format!("kill -{name} {pid}"), reason: format!("exited with {status}") })
    }
}

fn log_file(path: &Path) -> Result<std::fs::File, DrillError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| DrillError::Io { path: path.display().to_string(), source })
}

/// How a process ended, as the drill saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "how", content = "value")]
pub enum Ending {
    /// Still running when the evidence was collected.
    Running,
    /// The drill killed it with SIGKILL.
    KilledByDrill,
    /// Exited by itself with this code.
    Exited(i32),
    /// Died of this signal without the drill sending it (e.g. 6: SIGABRT).
    Signalled(i32),
}

impl Ending {
    fn of(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Exited(code),
            (None, Some(sig)) => Self::Signalled(sig),
            (None, None) => Self::Exited(-1),
        }
    }

    /// Whether the process may have died with results it had not seen acknowledged.
    pub fn abnormal(self) -> bool {
        match self {
            Self::KilledByDrill | Self::Signalled(_) => true,
            Self::Running | Self::Exited(_) => false,
        }
    }
}

/// A child that the drill owns; killed if the drill drops it.
#[derive(Debug)]
struct Owned {
    child: Child,
    pid: u32,
    ending: Option<Ending>,
}

impl Owned {
    fn spawn(mut cmd: Command, what: &str, log: &Path) -> Result<(Self, ChildStdout), DrillError> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file(log)?).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| DrillError::Spawn { what: what.to_owned(), reason: e.to_string() })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| DrillError::Spawn { what: what.to_owned(), reason: "no stdout".into() })?;
        let pid = child.id().unwrap_or(0);
        Ok((Self { child, pid, ending: None }, stdout))
    }

    /// The ending if the process has exited (without waiting).
    fn poll(&mut self) -> Option<Ending> {
        if self.ending.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.ending = Some(Ending::of(status));
        }
        self.ending
    }

    async fn kill(&mut self) {
        if self.poll().is_none() {
            let _ = self.child.kill().await;
            self.ending = Some(Ending::KilledByDrill);
        }
    }

    async fn wait(&mut self, deadline: Duration) -> Option<Ending> {
        if let Some(e) = self.poll() {
            return Some(e);
        }
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.ending = Some(Ending::of(status));
                self.ending
            }
            Ok(Err(_)) | Err(_) => None,
        }
    }

    async fn signal(&mut self, name: &str) -> Result<(), DrillError> {
        if name == "KILL" {
            self.kill().await;
            return Ok(());
        }
        signal(self.pid, name).await
    }
}

/// A `braid server` child process.
#[derive(Debug)]
pub struct ControlPlane {
    pub name: String,
    pub grpc: SocketAddr,
    pub log: PathBuf,
    proc: Owned,
}

impl ControlPlane {
    /// Starts `exe server ARGS…` with `env`, and waits until it prints its gRPC and HTTP addresses.
    pub async fn start(
        exe: &Path,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<Self, DrillError> {
        Self::start_command(exe, "server", name, args, env, log).await
    }

    /// Starts `exe SUBCOMMAND ARGS…` (`server` or `dev`) and waits until it prints its addresses.
    pub async fn start_command(
        exe: &Path,
        subcommand: &str,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<Self, DrillError> {
        let mut cmd = Command::new(exe);
        // Drills and benches drive the deployment they start with their own clients: no tokens.
        cmd.arg(subcommand).arg("--insecure").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let what = format!("control plane {name}");
        let (mut proc, stdout) = Owned::spawn(cmd, &what, log)?;
        let mut lines = BufReader::new(stdout).lines();
        let announced = async {
            let (mut grpc, mut http) = (None, None);
            while grpc.is_none() || http.is_none() {
                let Ok(Some(line)) = lines.next_line().await else { return None };
                if let Some(a) = line.strip_prefix("gRPC  ") {
                    grpc = a.trim().parse::<SocketAddr>().ok();
                } else if let Some(a) = line.strip_prefix("HTTP  http://") {
                    http = a.trim().parse::<SocketAddr>().ok();
                }
            }
            grpc
        };
        let grpc = match tokio::time::timeout(START_DEADLINE, announced).await {
            Ok(Some(grpc)) => grpc,
            Ok(None) | Err(_) => {
                proc.kill().await;
                let reason = format!("no address announced (see {})", log.display());
                return Err(DrillError::NotReady { what, reason });
            }
        };
        // Keep reading so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { name: name.to_owned(), grpc, log: log.to_path_buf(), proc })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub async fn signal(&mut self, name: &str) -> Result<(), DrillError> {
        self.proc.signal(name).await
    }

    /// The ending if it has exited.
    pub fn poll(&mut self) -> Option<Ending> {
        self.proc.poll()
    }

    /// Waits up to `deadline` for the process to exit by itself.
    pub async fn wait(&mut self, deadline: Duration) -> Option<Ending> {
        self.proc.wait(deadline).await
    }

    /// SIGTERM, then SIGKILL if it has not exited within `deadline`.
    pub async fn stop(&mut self, deadline: Duration) -> Ending {
        if self.proc.poll().is_none() {
            let _ = signal(self.proc.pid, "TERM").await;
        }
        match self.proc.wait(deadline).await {
            Some(e) => e,
            None => {
                self.proc.kill().await;
                Ending::KilledByDrill
            }
        }
    }
}

/// What a worker is started with.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub slots: u32,
    pub types: String,
    /// Index of the control plane it connects to.
    pub control_plane: usize,
}

/// A `braid-example-worker` child process; one generation of a named worker.
#[derive(Debug)]
pub struct WorkerProc {
    pub spec: WorkerSpec,
    pub generation: u32,
    pub ledger: PathBuf,
    pub log: PathBuf,
    /// How many times it printed `worker NAME connected` (once per stream).
    connects: watch::Receiver<u32>,
    proc: Owned,
}

impl WorkerProc {
    /// Starts a worker; with `wait`, returns once it has connected (printed `worker NAME connected`).
    pub async fn start(
        bin: &Path,
        spec: &WorkerSpec,
        generation: u32,
        endpoint: &str,
        dir: &Path,
        wait: bool,
    ) -> Result<Self, DrillError> {
        let stem = format!("worker-{}.{generation}", spec.name);
        let ledger = dir.join(format!("{stem}.jsonl"));
        let log = dir.join(format!("{stem}.log"));
        let mut cmd = Command::new(bin);
        cmd.args(["--endpoint", endpoint, "--name", &spec.name, "--slots", &spec.slots.to_string()])
            .args(["--types", &spec.types])
            .arg("--ledger")
            .arg(&ledger);
        let what = format!("worker {} ({})", spec.name, bin.display());
        let (proc, stdout) = Owned::spawn(cmd, &what, &log)?;
        let (tx, connects) = watch::channel(0u32);
        let want = format!("worker {} connected", spec.name);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == want {
                    tx.send_modify(|n| *n += 1);
                }
            }
        });
        let mut w = Self { spec: spec.clone(), generation, ledger, log, connects, proc };
        if wait {
            w.wait_connects(1, START_DEADLINE).await?;
        }
        Ok(w)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid
    }

    /// How many streams it has opened so far.
    pub fn connects(&self) -> u32 {
        *self.connects.borrow()
    }

    /// Waits until it has connected at least `n` times.
    pub async fn wait_connects(&mut self, n: u32, deadline: Duration) -> Result<(), DrillError> {
        let mut rx = self.connects.clone();
        match tokio::time::timeout(deadline, rx.wait_for(|c| *c >= n)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => {
                let reason = match self.proc.poll() {
                    Some(e) => format!("exited ({e:?}); see {}", self.log.display()),
                    None => format!("not connected {n} time(s) within {deadline:?}; see {}", self.log.display()),
                };
                Err(DrillError::NotReady { what: format!("worker {}", self.spec.name), reason })
            }
        }
    }

    pub async fn signal(&mut self, name: &str) -> Result<(), DrillError> {
        self.proc.signal(name).await
    }

    pub fn poll(&mut self) -> Option<Ending> {
        self.proc.poll()
    }

    pub async fn wait(&mut self, deadline: Duration) -> Option<Ending> {
        self.proc.wait(deadline).await
    }

    /// How it ended so far (`Running` while alive).
    pub fn ending(&mut self) -> Ending {
        self.proc.poll().unwrap_or(Ending::Running)
    }

    pub async fn kill(&mut self) {
        self.proc.kill().await;
    }
}
