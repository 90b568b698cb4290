//! The process's pipes: the task document written to stdin, stdout read up to a bound, the tail of stderr kept.

use super::group::ProcessGroup;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much of the end of stderr is kept for error messages.
pub(super) const STDERR_TAIL_BYTES: usize = 4096;

/// What was read from stdout.
#[derive(Debug)]
pub(super) enum Stdout {
    Complete(Vec<u8>),
    /// More than the bound: the process group was killed.
    TooLarge,
    Failed(std::io::Error),
}

/// Writes `document` and closes stdin. A process that exits (or closes stdin) without reading
/// it all is not an error here: its exit status tells what happened.
pub(super) async fn write_stdin(stdin: Option<impl AsyncWrite + Unpin>, document: Vec<u8>) {
    let Some(mut stdin) = stdin else { return };
    if let Err(error) = stdin.write_all(&document).await {
        tracing::debug!(%error, "the process did not read all of its input");
    }
    // Dropping stdin closes it: the process sees the end of its input.
}

/// Reads stdout to its end, or kills the group as soon as it passes `limit` bytes.
pub(super) async fn read_stdout(stdout: Option<impl AsyncRead + Unpin>, limit: usize, group: &ProcessGroup) -> Stdout {
    let Some(stdout) = stdout else { return Stdout::Complete(Vec::new()) };
    let mut bytes = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match stdout.take(bound).read_to_end(&mut bytes).await {
        Ok(_) if bytes.len() > limit => {
            group.kill();
            Stdout::TooLarge
        }
        Ok(_) => Stdout::Complete(bytes),
        Err(error) => Stdout::Failed(error),
    }
}

/// Reads stderr to its end, keeping only its last [`STDERR_TAIL_BYTES`].
pub(super) async fn read_stderr_tail(stderr: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut stderr) = stderr else { return Vec::new() };
    let mut tail = Vec::with_capacity(2 * STDERR_TAIL_BYTES);
    let mut chunk = vec![0; STDERR_TAIL_BYTES];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
        }
    }
    let keep = tail.len().saturating_sub(STDERR_TAIL_BYTES);
    tail.drain(..keep);
    tail
}
