//! Compiling a component in a child process (`dgate __compile`), so cranelift's memory goes back
//! to the system, with an engine configured exactly like the gateway's (the serialized code is
//! refused by any other).

use std::sync::Arc;

use wasmtime::component::Component;

use super::LoadError;
use super::engine::{Engine, EngineOptions};
use crate::worker::{JobError, WorkerError};

impl Engine {
    /// Compiles in `dgate __compile` when the engine has a compiler binary: `None` when it has
    /// none or the child could not do the job (the caller compiles in-process).
    pub(super) async fn compile_in_child(
        &self,
        bytes: &[u8],
    ) -> Option<Result<(Component, Vec<u8>), LoadError>> {
        let worker = self.compiler.as_ref()?;
        let args = [
            "__compile",
            &self.max_instances.to_string(),
            &self.max_memory.to_string(),
        ];
        match worker.run(&args, bytes.to_vec()).await {
            Ok(serialized) => {
                // SAFETY: the bytes are `Component::serialize` output of this same binary with
                // an engine configured from the same options (deserialize refuses others).
                match unsafe { Component::deserialize(&self.engine, &serialized) } {
                    Ok(c) => Some(Ok((c, serialized))),
                    Err(e) => {
                        tracing::warn!(error = %e, "the module compiler's output cannot be used; compiling in-process");
                        None
                    }
                }
            }
            Err(WorkerError::Refused(m)) => Some(Err(LoadError::Invalid(m))),
            Err(e) => {
                tracing::warn!(error = %e, "the module compiler failed; compiling in-process");
                None
            }
        }
    }
}

/// `dgate __compile MAX_INSTANCES MAX_MEMORY`: compiles the component on stdin with an engine
/// configured like the gateway's and writes the serialized code to stdout.
pub fn compiler_main(args: &[String]) -> i32 {
    let (Some(Ok(max_instances)), Some(Ok(max_memory))) = (
        args.first().map(|a| a.parse::<u32>()),
        args.get(1).map(|a| a.parse::<usize>()),
    ) else {
        eprintln!("usage: dgate __compile MAX_INSTANCES MAX_MEMORY < component.wasm");
        return 2;
    };
    crate::worker::child_main(|bytes| {
        let engine: Arc<Engine> = Engine::new(EngineOptions {
            max_instances,
            max_memory,
            ..EngineOptions::default()
        })
        .map_err(|e| JobError::Failed(format!("cannot start the engine: {e:#}")))?;
        Component::new(&engine.engine, &bytes)
            .and_then(|c| c.serialize())
            .map_err(|e| JobError::Refused(format!("{e:#}")))
    })
}
