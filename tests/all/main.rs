//! The one integration test binary: starts the real `dgate` binary on free ports with temporary data
//! dirs and talks to it over real sockets.

mod admin_api;
mod admin_tls;
mod authoring;
mod cli;
mod cluster;
mod config;
mod contract;
mod declarative;
mod dgate;
mod helpers;
mod isolation;
mod layering;
mod module_cases;
mod modules;
mod operations;
mod persistence;
mod proxy;
mod proxy_modules;
mod proxy_tls;
mod upstream;
mod ws_grpc;
