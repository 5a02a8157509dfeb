//! A minimal upstream for `bench/run.sh`: answers every request with a fixed body of the size given
//! by the path (`/` → 2 bytes, `/16k` → 16 KiB) over HTTP/1.1 keep-alive. One thread, no logging.
//!
//! `cargo run --release --example bench-upstream -- 127.0.0.1:18080`

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        let small = Bytes::from_static(b"ok");
        let big = Bytes::from(vec![b'x'; 16 << 10]);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (small, big) = (small.clone(), big.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let body = if req.uri().path() == "/16k" {
                        big.clone()
                    } else {
                        small.clone()
                    };
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
