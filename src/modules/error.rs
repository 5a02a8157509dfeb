//! What can go wrong with a module: loading it ([`LoadError`]) and calling it ([`CallError`]).
//! A hook's own failure (a throw, a bad result) and a trap or a limit are told apart, since only
//! the first leaves the instance usable.

use std::time::Duration;

/// Why a hook call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the module used up its fuel ({0} units)")]
    OutOfFuel(u64),
    #[error("the module ran past its time limit of {0:?}")]
    Timeout(Duration),
    #[error("the module reached its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("the module trapped: {0}")]
    Trap(String),
    #[error("the hook threw: {message}")]
    Thrown {
        message: String,
        stack: Option<String>,
    },
    #[error("the hook returned something unusable: {0}")]
    InvalidResult(String),
    #[error("the hook's promise never settled")]
    Unsettled,
    #[error("the module does not define {0}")]
    NotDefined(&'static str),
    #[error("cannot start the module: {0}")]
    Instantiate(String),
    /// The module has its limit of calls running (`modules.max_concurrency`).
    #[error("the module is running its limit of {0} calls at once")]
    Busy(u32),
    /// Every instance slot of the node is in use (`modules.max_instances`).
    #[error("no module instance slot is free on this node: {0}")]
    NoSlot(String),
    /// The hooks' threads are gone: the node is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

impl CallError {
    /// A call refused for want of room (try again shortly), not a failure of the module.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            CallError::Busy(_) | CallError::NoSlot(_) | CallError::ShuttingDown
        )
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a component of the `dgate:module` world (a core module, another world, garbage).
    #[error("{0}")]
    Invalid(String),
    #[error("module cache: {0}")]
    Cache(#[source] std::io::Error),
    /// wasmtime's error type is not a `std::error::Error`; its text is kept.
    #[error("cannot serialize the compiled module: {0}")]
    Serialize(String),
    /// Every instance slot of the node was in use when the module was checked.
    #[error("no module instance slot is free on this node: {0}")]
    NoSlot(String),
    /// Starting the module to check it ran past its wall-time limit. For a module `dgate
    /// build` made, the start runs none of its code (its top level ran in the build), so this
    /// says the machine was busy (the thread descheduled past the limit) more than that the
    /// module is wrong: worth another try. (The node that takes the module's write tries
    /// twice, then refuses it: see `ModuleSet::warm`.)
    #[error("starting the module ran past its time limit of {0:?}")]
    Timeout(Duration),
}

impl LoadError {
    /// A failure that may not happen again (worth another try later).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LoadError::NoSlot(_) | LoadError::Cache(_) | LoadError::Timeout(_)
        )
    }

    /// The start ran past its time limit (see [`LoadError::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, LoadError::Timeout(_))
    }
}

/// A failure to start the module (or to ask it which hooks it defines) while loading it.
impl From<CallError> for LoadError {
    fn from(e: CallError) -> LoadError {
        match e {
            CallError::NoSlot(m) => LoadError::NoSlot(m),
            CallError::Timeout(limit) => LoadError::Timeout(limit),
            e => LoadError::Invalid(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CallError, LoadError};
    use std::time::Duration;

    #[test]
    fn a_start_past_its_time_limit_is_tried_again_and_a_broken_one_is_not() {
        let slow = LoadError::from(CallError::Timeout(Duration::from_millis(50)));
        assert!(slow.is_timeout(), "{slow:?}");
        assert!(slow.is_transient());
        assert_eq!(
            slow.to_string(),
            "starting the module ran past its time limit of 50ms"
        );
        let full = LoadError::from(CallError::NoSlot("16 instances".into()));
        assert!(full.is_transient(), "{full:?}");
        for broken in [
            CallError::OutOfFuel(1),
            CallError::OutOfMemory(1 << 20),
            CallError::Instantiate("unreachable".into()),
        ] {
            let e = LoadError::from(broken);
            assert!(!e.is_transient(), "{e:?}");
        }
    }
}
