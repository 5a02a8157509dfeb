//! dgate: a distributed API gateway programmed with sandboxed JS/TS modules.
//!
//! Dependencies point inward, with no circle between these modules: `cli` talks to the admin API
//! over HTTP; `admin` hands changes to `cluster`, which replicates them and applies them to
//! `storage`; `proxy` is told what was applied and runs route modules through `modules`, which
//! knows neither `proxy` nor `cluster`; `server`, the composition root, wires them together.
//! `resources`, `config`, `router` and `units` do no I/O.

pub mod admin;
pub mod build;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod constant_time;
pub mod modules;
pub mod proxy;
pub mod resources;
pub mod router;
pub mod server;
pub mod storage;
pub mod tls;
pub mod units;
pub mod worker;
