//! Start and stop real `dgate` processes; a small JSON client for their admin API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_dgate");

/// A running `dgate server`.
pub struct Gateway {
    child: Child,
    /// Everything the process has logged on stderr so far (a thread drains the pipe).
    logs: Arc<Mutex<String>>,
    pub admin: String,
    pub proxy: String,
    /// `https://addr` when `proxy.tls` is configured.
    pub proxy_tls: Option<String>,
    /// `http://addr` of DGate's test server, when configured (`debug: true`).
    pub test_server: Option<String>,
}

impl Gateway {
    /// Starts `dgate server` on free ports with its data in `data_dir`, plus `extra` arguments, and
    /// waits until it says it is ready.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Gateway {
        Self::try_start(data_dir, extra).unwrap_or_else(|e| panic!("dgate did not start: {e}"))
    }

    /// Like [`Gateway::start`], with environment variables (`RUST_LOG`, say) set for it.
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        Self::try_start_env(data_dir, extra, env)
            .unwrap_or_else(|e| panic!("dgate did not start: {e}"))
    }

    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<Gateway, String> {
        Self::try_start_env(data_dir, extra, &[])
    }

    fn try_start_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let mut cmd = Command::new(BIN);
        cmd.arg("server");
        // Free ports unless the caller picks them.
        for flag in ["--admin-port", "--proxy-port"] {
            if !extra.contains(&flag) {
                cmd.args([flag, "0"]);
            }
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "dgate=warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let drain = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("dgate ready: ") {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ready) => {
                let field = |name: &str| {
                    ready
                        .split_whitespace()
                        .find_map(|f| f.strip_prefix(name))
                        .map(str::to_string)
                };
                let admin =
                    field("admin=").ok_or_else(|| format!("no admin address in {ready:?}"))?;
                let proxy =
                    field("proxy=").ok_or_else(|| format!("no proxy address in {ready:?}"))?;
                Ok(Gateway {
                    child,
                    logs,
                    admin,
                    proxy,
                    proxy_tls: field("proxy_tls="),
                    test_server: field("test_server="),
                })
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map_err(|e| e.to_string())?;
                // The process is gone, so its stderr ends: read the rest before reporting (the
                // ready channel closes as soon as stdout does, maybe before stderr was read).
                // Bounded: a child process of its own could hold the pipe open.
                let deadline = Instant::now() + Duration::from_secs(5);
                while !drain.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(format!(
                    "no ready line; exit {:?}, stderr: {}",
                    status.code(),
                    logs.lock().unwrap()
                ))
            }
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "dgate exited with {status}");
    }

    /// SIGTERM, wait, and return what the process logged on stderr.
    pub fn stop_and_logs(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        // The drain thread ends with the pipe; give it the moment it needs to read the rest.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.logs) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.logs()
    }

    /// What the process has logged on stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the process so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn client(&self) -> Api {
        Api::new(&self.admin)
    }

    /// The admin API's `/metrics` text.
    pub async fn metrics(&self) -> String {
        http()
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON client for one admin API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    header: Option<(String, String)>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            http: http(),
            base: base.to_string(),
            header: None,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Api {
        self.header = Some((name.to_string(), value.to_string()));
        self
    }

    /// Sends `method path` with an optional raw body; returns status and parsed JSON (Null if none).
    pub async fn raw(&self, method: &str, path: &str, body: Option<String>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some((h, v)) = &self.header {
            req = req.header(h, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, v)
    }

    pub async fn put(&self, kind: &str, body: Value) -> (u16, Value) {
        self.raw("PUT", &format!("/api/v1/{kind}"), Some(body.to_string()))
            .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.raw("GET", path, None).await
    }

    pub async fn delete(&self, kind: &str, body: Value) -> (u16, Value) {
        self.raw("DELETE", &format!("/api/v1/{kind}"), Some(body.to_string()))
            .await
    }
}

/// A loopback port that was free a moment ago (for nodes that must keep their address across a
/// restart).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// PUT that must create or replace (200 or 201).
pub async fn ok_put(api: &Api, kind: &str, body: Value) {
    let (s, res) = api.put(kind, body.clone()).await;
    assert!(s == 200 || s == 201, "PUT {kind} {body}: {s} {res}");
}

/// Runs the `dgate` CLI with `args` against `admin`.
pub fn cli(admin: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--admin")
        .arg(admin)
        .args(args)
        .env_remove("DGATE_ADMIN_AUTH")
        .stdin(Stdio::null())
        .output()
        .expect("run dgate")
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// Polls `check` until it holds, failing the test after `limit` with `what`. Conditions on a busy
/// machine take as long as they take: never a fixed sleep.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A reqwest client (reqwest needs a process-wide TLS provider, which dgate's binary installs).
pub fn http() -> reqwest::Client {
    http_builder().build().expect("reqwest client")
}

/// A reqwest client builder, as [`http`].
pub fn http_builder() -> reqwest::ClientBuilder {
    dgate::tls::install_default_provider();
    reqwest::Client::builder()
}

/// `GET url` with a fresh client, as `reqwest::get` does.
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}
