use std::future::Future;

use http::Request;

use super::ConnInfo;
use crate::config::ProxyConfig;
use crate::proxy::Proxy;

/// The size of the future `make` returns, without calling it (a request body cannot be made
/// outside hyper).
fn future_size<A, B, F: Future>(_make: impl Fn(A, B) -> F) -> usize {
    std::mem::size_of::<F>()
}

/// hyper keeps a request's future for each connection and moves it once a request, so its size
/// is memory a connection holds and bytes copied per request. The rarer roads (modules,
/// upgrades, new upstream connections, TLS and HTTP/2 upstreams) are boxed to keep the common
/// one small: before they were, it was 7.5 KiB (13 KiB in a release build). (The fields the
/// proxy adds upstream then moved from the map into the future, 32 bytes held at a few levels:
/// 3888 -> 4120 bytes, against a hash and a probe for each of six fields.)
#[test]
fn a_plain_request_future_stays_small() {
    let proxy = Proxy::new(&ProxyConfig::default(), None, &prometheus::Registry::new()).unwrap();
    let size = future_size(
        |req: Request<super::super::body::ClientBody>, conn: ConnInfo| proxy.handle(req, conn),
    );
    assert!(size <= 4160, "a request's future grew to {size} bytes");
}
