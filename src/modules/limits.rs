//! The limits of one hook call (fuel, memory, wall time, fetches) and the store limiter that
//! enforces the memory one. Defaults come from the config (`modules:`).

use std::time::Duration;

use crate::config::ModulesConfig;
use crate::resources::ModuleLimits;

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wasm fuel: about one unit per instruction.
    pub fuel: u64,
    /// Linear memory (all memories of the instance together).
    pub memory: usize,
    /// Wall time for one hook call, including time spent waiting on `fetch`.
    pub wall: Duration,
    /// Outbound requests per call.
    pub max_fetches: u32,
}

impl Default for Limits {
    /// The config's `modules:` defaults.
    fn default() -> Self {
        Limits::from_config(&ModulesConfig::default())
    }
}

impl Limits {
    /// The limits a node's `modules:` config sets for every call.
    pub fn from_config(config: &ModulesConfig) -> Limits {
        Limits {
            fuel: config.fuel,
            memory: usize::try_from(config.memory.0).unwrap_or(usize::MAX),
            wall: config.timeout.as_duration(),
            max_fetches: config.max_fetches,
        }
    }

    /// A module's own limits where it sets them, these elsewhere. Memory cannot exceed these
    /// limits' memory, which is the size of the engine's instance slots.
    pub fn for_module(&self, module: &str, namespace: &str, own: &ModuleLimits) -> Limits {
        let memory = match own.memory {
            Some(m) if m.0 > self.memory as u64 => {
                tracing::warn!(
                    module,
                    namespace,
                    asked = %m,
                    allowed = self.memory,
                    "module memory limit is above the gateway's modules.memory; using the gateway's"
                );
                self.memory
            }
            Some(m) => m.0 as usize,
            None => self.memory,
        };
        Limits {
            fuel: own.fuel.unwrap_or(self.fuel),
            memory,
            wall: own.timeout.map_or(self.wall, |t| t.as_duration()),
            max_fetches: own.max_fetches.unwrap_or(self.max_fetches),
        }
    }
}

/// Denies memory growth past the call's limit and remembers that it did.
pub(crate) struct Limiter {
    pub(crate) memory: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
