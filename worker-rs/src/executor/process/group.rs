//! `ProcessGroup`: the process group a command leads, killed whole (and killed when dropped).

/// The process group of a spawned command (Unix: the command leads a group of its own).
#[derive(Debug)]
pub(super) struct ProcessGroup {
    leader: Option<u32>,
}

impl ProcessGroup {
    /// The group `leader` (the spawned child's pid) leads.
    pub(super) fn led_by(leader: Option<u32>) -> Self {
        Self { leader }
    }

    /// Sends `SIGKILL` to every process of the group; a group that is gone is not an error.
    #[cfg(unix)]
    pub(super) fn kill(&self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let Some(leader) = self.leader.and_then(|pid| i32::try_from(pid).ok()) else { return };
        if let Err(error) = killpg(Pid::from_raw(leader), Signal::SIGKILL)
            && error != nix::errno::Errno::ESRCH
        {
            tracing::warn!(%error, pgid = leader, "cannot kill the process group");
        }
    }

    /// Without process groups only the child itself is killed (by `kill_on_drop`).
    #[cfg(not(unix))]
    pub(super) fn kill(&self) {}

    /// Kills what is left of the group, once: dropping it afterwards sends nothing more.
    pub(super) fn finish(mut self) {
        self.kill();
        self.leader = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
