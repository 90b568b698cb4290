//! Facts about the machine and the build a bench ran on (cores, kernel, CPU, memory, profile, commit).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_mib: u64,
    pub kernel: String,
    pub os: String,
    /// `debug` or `release`: the profile of this `braid` (the bench and its workers).
    pub build_profile: &'static str,
    pub braid_version: &'static str,
    /// `BRAID_GIT_COMMIT`, else `git rev-parse HEAD` in the current dir (with `-dirty` when it has changes).
    pub git_commit: Option<String>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn git(args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new("git").args(args).stderr(std::process::Stdio::null()).output().ok()
}

fn git_commit() -> Option<String> {
    if let Ok(c) = std::env::var("BRAID_GIT_COMMIT")
        && !c.is_empty()
    {
        return Some(c);
    }
    let out = git(&["rev-parse", "HEAD"]).filter(|o| o.status.success())?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

impl Machine {
    pub fn probe() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        Self {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            memory_mib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            os,
            build_profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            braid_version: crate::VERSION,
            git_commit: git_commit(),
        }
    }
}
