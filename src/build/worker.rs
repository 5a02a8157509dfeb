//! Builds as the gateway runs them: in a child process (`dgate __build`, see
//! [`crate::worker`]) or, where there is no binary at hand, on a blocking thread.

use super::{BuildError, build_with};
use crate::worker::{JobError, Worker, WorkerError};

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

/// Where the gateway builds modules.
#[derive(Debug, Clone, Default)]
pub enum Builder {
    /// On a blocking thread of this process (tests, and where no `dgate` binary is at hand).
    #[default]
    InProcess,
    /// In a child process running `dgate __build` (see [`crate::worker`]).
    Worker(Worker),
}

impl Builder {
    pub async fn build(&self, req: BuildRequest) -> Result<Vec<u8>, BuildError> {
        let worker = match self {
            Builder::InProcess => return build_in_process(req).await,
            Builder::Worker(w) => w,
        };
        let input = serde_json::to_vec(&req).map_err(|e| BuildError::Internal(e.to_string()))?;
        match worker.run(&["__build"], input).await {
            Ok(component) => Ok(component),
            Err(WorkerError::Refused(m)) => Err(BuildError::Source(m)),
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
