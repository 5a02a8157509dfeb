//! Child processes of this binary: `dgate __build` and `dgate __compile` run one job each, with
//! the input on stdin and the result on stdout, so the memory a job takes (oxc, wizer, cranelift)
//! goes back to the system when it exits, and a job that crashes takes only itself down.
//!
//! The parent side is [`Worker::run`]; the child side is [`child_main`]. A job that refuses its
//! input (a source error, bytes that are not a component) exits with [`REFUSED`] and says why on
//! stderr; any other failure exits with 1.

use std::path::PathBuf;
use std::process::Stdio;

/// The exit status of a job that refused its input; its stderr says why.
pub const REFUSED: i32 = 65;

/// Why a job in a child process gave no result.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The job refused its input: the message is the child's stderr, for the user.
    #[error("{0}")]
    Refused(String),
    /// The binary could not be started (removed or replaced by an upgrade in place, say).
    #[error("cannot start {exe}: {source}")]
    Spawn {
        exe: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing the input or reading the output failed.
    #[error("talking to the worker: {0}")]
    Io(#[source] std::io::Error),
    /// The child failed otherwise (crashed, was killed, ran out of memory).
    #[error("the worker failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    /// The job ran past its time limit and was killed.
    #[error("it ran past its time limit of {0:?}")]
    TimedOut(std::time::Duration),
    /// The job's resident memory went past its limit and it was killed.
    #[error("it used more than its memory limit of {0} bytes")]
    OverMemory(u64),
}

/// What a job may use: wall time, and resident memory (checked every 20 ms).
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    pub time: std::time::Duration,
    pub memory: u64,
}

/// A `dgate` binary to run jobs in.
#[derive(Debug, Clone)]
pub struct Worker {
    exe: PathBuf,
}

impl Worker {
    pub fn new(exe: PathBuf) -> Worker {
        Worker { exe }
    }

    /// This process's own binary, when it can be found.
    pub fn current() -> Option<Worker> {
        std::env::current_exe()
            .map_err(|e| tracing::warn!(error = %e, "cannot find the dgate binary; module builds and compiles run in-process"))
            .ok()
            .map(Worker::new)
    }

    /// Runs `dgate ARGS...` with `input` on stdin and returns its stdout. The child is killed if
    /// the returned future is dropped.
    pub async fn run(&self, args: &[&str], input: Vec<u8>) -> Result<Vec<u8>, WorkerError> {
        self.run_limited(args, input, None).await
    }

    /// [`Worker::run`], killing the child when it passes `limits`.
    pub async fn run_limited(
        &self,
        args: &[&str],
        input: Vec<u8>,
        limits: Option<JobLimits>,
    ) -> Result<Vec<u8>, WorkerError> {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new(&self.exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| WorkerError::Spawn {
                exe: self.exe.display().to_string(),
                source,
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| WorkerError::Io(std::io::Error::other("the worker has no stdin")))?;
        let writing = async move {
            let r = stdin.write_all(&input).await;
            drop(stdin);
            r
        };
        let pid = child.id();
        let job = async move {
            let (written, out) = tokio::join!(writing, child.wait_with_output());
            (written, out)
        };
        // Dropping `job` drops the child, which kills it.
        let (written, out) = match limits {
            None => job.await,
            Some(limits) => tokio::select! {
                done = job => done,
                () = tokio::time::sleep(limits.time) => return Err(WorkerError::TimedOut(limits.time)),
                () = over_memory(pid, limits.memory) => return Err(WorkerError::OverMemory(limits.memory)),
            },
        };
        let out = out.map_err(WorkerError::Io)?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match out.status.code() {
            Some(0) => written.map(|()| out.stdout).map_err(WorkerError::Io),
            Some(REFUSED) => Err(WorkerError::Refused(stderr)),
            _ => Err(WorkerError::Failed {
                status: out.status.to_string(),
                stderr,
            }),
        }
    }
}

/// Ready once process `pid` has more than `limit` bytes resident; never where that cannot be
/// read (no `/proc`).
async fn over_memory(pid: Option<u32>, limit: u64) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let path = format!("/proc/{pid}/status");
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let Ok(status) = tokio::fs::read_to_string(&path).await else {
            return std::future::pending().await;
        };
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        if rss_kib.is_some_and(|kib| kib.saturating_mul(1024) > limit) {
            return;
        }
    }
}

/// What a job in the child says went wrong.
pub enum JobError {
    /// The input is refused (exit [`REFUSED`]); the message is for the user.
    Refused(String),
    /// Anything else (exit 1).
    Failed(String),
}

/// The child side: reads stdin, runs `job`, writes its output to stdout. Returns the exit code.
pub fn child_main(job: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, JobError>) -> i32 {
    use std::io::{Read as _, Write as _};
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("cannot read the input: {e}");
        return 1;
    }
    match job(input) {
        Ok(out) => match std::io::stdout().write_all(&out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the output: {e}");
                1
            }
        },
        Err(JobError::Refused(m)) => {
            eprintln!("{m}");
            REFUSED
        }
        Err(JobError::Failed(m)) => {
            eprintln!("{m}");
            1
        }
    }
}
