//! dgate: a distributed API gateway programmed with sandboxed JS/TS modules.
//!
//! Dependencies point inward: `cli` talks to the admin API over HTTP; `admin` hands changes to
//! `cluster`, which applies them to `storage`; `resources` and `config` do no I/O.

pub mod admin;
pub mod build;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod constant_time;
pub mod modules;
pub mod proxy;
pub mod resources;
pub mod router;
pub mod server;
pub mod storage;
