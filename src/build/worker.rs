//! Builds as the gateway runs them: in a child process (`dgate __build`, see
//! [`crate::worker`]) or, where there is no binary at hand, on a blocking thread.

use super::{BuildError, build_with};
use crate::worker::{JobError, JobLimits, Worker, WorkerError};

/// One build, as the gateway asks for it: a module, the modules it may import by name, and
/// whether it may be a library (no hooks).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BuildRequest {
    pub file: String,
    pub source: String,
    /// Importable modules: name → (file name, source).
    pub libraries: std::collections::BTreeMap<String, (String, String)>,
    pub library: bool,
}

impl BuildRequest {
    fn run(&self) -> Result<Vec<u8>, BuildError> {
        build_with(
            &self.file,
            &self.source,
            &|n| self.libraries.get(n).cloned(),
            self.library,
        )
    }
}

/// How long a build may run, how much memory it may hold, and how many run at once (a build
/// waits up to [`BuildLimits::queue`] for its turn).
#[derive(Debug, Clone)]
pub struct BuildLimits {
    pub job: JobLimits,
    pub queue: std::time::Duration,
    concurrency: usize,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl BuildLimits {
    pub fn new(
        time: std::time::Duration,
        memory: u64,
        concurrency: usize,
        queue: std::time::Duration,
    ) -> BuildLimits {
        BuildLimits {
            job: JobLimits { time, memory },
            queue,
            concurrency,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency)),
        }
    }

    /// The `modules.build` config.
    pub fn from_config(c: &crate::config::BuildConfig) -> BuildLimits {
        BuildLimits::new(
            c.timeout.as_duration(),
            c.memory.0,
            c.concurrency as usize,
            c.queue_timeout.as_duration(),
        )
    }
}

/// Where the gateway builds modules.
#[derive(Debug, Clone, Default)]
pub enum Builder {
    /// On a blocking thread of this process (tests, and where no `dgate` binary is at hand).
    #[default]
    InProcess,
    /// In a child process running `dgate __build` (see [`crate::worker`]), within limits.
    Worker(Worker, BuildLimits),
}

impl Builder {
    pub async fn build(&self, req: BuildRequest) -> Result<Vec<u8>, BuildError> {
        let (worker, limits) = match self {
            Builder::InProcess => return build_in_process(req).await,
            Builder::Worker(w, limits) => (w, limits),
        };
        let _slot = tokio::time::timeout(limits.queue, limits.slots.clone().acquire_owned())
            .await
            .map_err(|_| BuildError::Busy(limits.concurrency))?
            .map_err(|_| BuildError::Busy(limits.concurrency))?;
        let input = serde_json::to_vec(&req).map_err(|e| BuildError::Internal(e.to_string()))?;
        match worker
            .run_limited(&["__build"], input, Some(limits.job))
            .await
        {
            Ok(component) => Ok(component),
            Err(WorkerError::Refused(m)) => Err(BuildError::Source(m)),
            Err(e @ (WorkerError::TimedOut(_) | WorkerError::OverMemory(_))) => {
                Err(BuildError::Limit(format!(
                    "{e} (does the module's top level loop or allocate without end?)"
                )))
            }
            Err(e @ WorkerError::Spawn { .. }) => {
                tracing::warn!(error = %e, "cannot start the build worker; building in-process");
                build_in_process(req).await
            }
            Err(e) => Err(BuildError::Internal(e.to_string())),
        }
    }
}

async fn build_in_process(req: BuildRequest) -> Result<Vec<u8>, BuildError> {
    tokio::task::spawn_blocking(move || req.run())
        .await
        .map_err(|e| BuildError::Internal(format!("build task: {e}")))?
}

/// `dgate __build`: reads a [`BuildRequest`] as JSON on stdin, writes the component to stdout.
pub fn worker_main() -> i32 {
    crate::worker::child_main(|input| {
        let req: BuildRequest = serde_json::from_slice(&input)
            .map_err(|e| JobError::Failed(format!("invalid build request: {e}")))?;
        req.run().map_err(|e| match e {
            BuildError::Source(m) => JobError::Refused(m),
            e => JobError::Failed(e.to_string()),
        })
    })
}
