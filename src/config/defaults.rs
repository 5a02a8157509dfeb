//! Every default of the config in one place.

use crate::units::{ByteSize, Millis};

pub const VERSION: &str = "v1";
pub const DATA_DIR: &str = "./dgate-data";
/// Versions kept of each module and route (`storage.history`).
pub const HISTORY: usize = 10;
/// The most `storage.history` may keep.
pub const MAX_HISTORY: usize = 1000;
pub const HOST: &str = "127.0.0.1";
pub const PROXY_PORT: u16 = 8080;
pub const ADMIN_PORT: u16 = 9080;
pub const PROXY_TLS_PORT: u16 = 8443;
pub const MAX_HEADER_SIZE: ByteSize = ByteSize(64 << 10);
pub const MAX_HEADERS: usize = 100;
pub const HEADER_READ_TIMEOUT: Millis = Millis(30_000);
/// Upstream timeouts when a service sets none.
pub const CONNECT_TIMEOUT: Millis = Millis(10_000);
pub const REQUEST_TIMEOUT: Millis = Millis(60_000);
pub const KEY_HEADER: &str = "X-DGate-Key";
pub const MAX_BODY_SIZE: ByteSize = ByteSize(8 << 20);
/// The largest body cap a config may ask for.
pub const MAX_BODY_SIZE_LIMIT: ByteSize = ByteSize(1 << 30);
/// `modules:`, the limits of one hook call.
pub const MODULE_FUEL: u64 = 1_000_000_000;
pub const MODULE_MEMORY: ByteSize = ByteSize(64 << 20);
pub const MODULE_TIMEOUT: Millis = Millis(50);
pub const MODULE_MAX_FETCHES: u32 = 8;
pub const MODULE_FETCH_TIMEOUT: Millis = Millis(10_000);
pub const MODULE_MAX_BODY_SIZE: ByteSize = ByteSize(16 << 20);
/// Instance slots of a node, and the calls one module may run at once: a quarter of them, so
/// that one busy module leaves room for the others.
pub const MODULE_MAX_INSTANCES: u32 = 256;
pub const MODULE_MAX_CONCURRENCY: u32 = 64;
/// `modules.build:` a build takes a few seconds and about 70 MiB.
pub const BUILD_TIMEOUT: Millis = Millis(60_000);
pub const BUILD_MEMORY: ByteSize = ByteSize(512 << 20);
pub const BUILD_CONCURRENCY: u32 = 2;
pub const BUILD_QUEUE_TIMEOUT: Millis = Millis(10_000);
/// `admin.replication.raft_config`.
pub const HEARTBEAT_INTERVAL: Millis = Millis(100);
pub const ELECTION_TIMEOUT_MIN: Millis = Millis(400);
pub const ELECTION_TIMEOUT_MAX: Millis = Millis(800);
pub const SNAPSHOT_THRESHOLD: u64 = 5000;
