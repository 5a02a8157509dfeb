use std::hash::BuildHasher;

use super::*;

fn hash(key: &Key) -> u64 {
    BuildHasherDefault::<KeyHasher>::default().hash_one(key)
}

#[test]
fn keys_of_one_address_meet_whatever_its_case() {
    let a = Key::new("Upstream.Example:8080".parse().unwrap());
    let b = Key::new("upstream.example:8080".parse().unwrap());
    assert_eq!(a, b);
    assert_eq!(hash(&a), hash(&b));
    let mut map: HashMap<Key, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
    map.insert(a, 1);
    assert_eq!(map.get(&b), Some(&1));
}

#[test]
fn keys_of_different_addresses_differ() {
    let a = Key::new("127.0.0.1:8080".parse().unwrap());
    let b = Key::new("127.0.0.1:8081".parse().unwrap());
    assert_ne!(a, b);
    assert_ne!(hash(&a), hash(&b));
}

/// A connection's one timer keeps each exchange's limit whatever the previous one set: a
/// limit that passed (the timer fired, or fires mid-exchange) is moved on, a later one is
/// brought forward. The upstream answers the first request at once, the second after a pause,
/// never the third.
#[tokio::test]
async fn each_exchange_on_a_connection_keeps_its_own_time_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{Duration, Instant};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        for answer_after in [Some(0), Some(300), None] {
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the proxy closed the connection");
                seen.extend_from_slice(&buf[..n]);
            }
            seen.clear();
            let Some(ms) = answer_after else {
                // Held open, unanswered, until the test ends.
                return std::future::pending::<()>().await;
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut conn = lean::Conn::new(tcp, Key::new(addr.to_string().parse().unwrap()));
    async fn exchange(
        conn: &mut lean::Conn,
        within: Duration,
    ) -> Result<h1::Head, lean::ExchangeError> {
        let limit = Instant::now() + within;
        let headers = http::HeaderMap::new();
        lean::exchange(conn, &Method::GET, "/", &headers, &Added::default(), limit).await
    }
    let all = async {
        let head = exchange(&mut conn, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(head.status, http::StatusCode::NO_CONTENT);
        // The first limit passes while the upstream takes its time: not this request's.
        let head = exchange(&mut conn, Duration::from_secs(30)).await.unwrap();
        assert_eq!(head.status, http::StatusCode::NO_CONTENT);
        // The timer is set 30 s out: this limit is earlier.
        let started = Instant::now();
        let e = exchange(&mut conn, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e.error, BodyError::TimedOut), "{e:?}");
        assert!(!e.unanswered);
        assert!(started.elapsed() < Duration::from_secs(20));
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("an exchange outlived its limit");
    upstream.abort();
}

mod wire {
    use bytes::BytesMut;
    use http::{HeaderMap, Method, StatusCode, Version};

    use super::super::h1::*;

    fn head(text: &str, method: &Method) -> Result<Option<Head>, WireError> {
        parse_response(&mut BytesMut::from(text.as_bytes()), method)
    }

    #[test]
    fn a_request_head_is_written_in_origin_form() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "up:8080".parse().unwrap());
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let mut out = Vec::new();
        encode_head(
            &mut out,
            &Method::GET,
            "/p?q=1",
            &headers,
            &Added::default(),
        );
        assert_eq!(
            out,
            b"GET /p?q=1 HTTP/1.1\r\nhost: up:8080\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
        );
    }

    /// The proxy's own fields are written around the map's: `Host` first in place of the
    /// client's, the forwarding fields (`X-Forwarded-Host` the client's `Host`) and `Via` after
    /// the rest; merged into a map, they are the same fields.
    #[test]
    fn added_fields_are_written_as_a_merged_map_would_hold_them() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "client.example".parse().unwrap());
        headers.insert("via", "1.0 edge".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        let host = "up:8080".parse().unwrap();
        let ip = "10.0.0.1".parse().unwrap();
        let added = Added {
            host: Some(&host),
            forwarded: Some(Forwarded {
                ip: &ip,
                https: true,
            }),
            via: Some(Version::HTTP_11),
        };
        let mut out = Vec::new();
        encode_head(&mut out, &Method::GET, "/", &headers, &added);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "GET / HTTP/1.1\r\nhost: up:8080\r\nvia: 1.0 edge\r\naccept: */*\r\n\
             x-forwarded-for: 10.0.0.1\r\nx-real-ip: 10.0.0.1\r\n\
             x-forwarded-host: client.example\r\nx-forwarded-proto: https\r\n\
             via: 1.1 dgate\r\n\r\n"
        );

        let mut merged = headers.clone();
        added.merge_into(&mut merged);
        let mut written = Vec::new();
        encode_head(&mut written, &Method::GET, "/", &merged, &Added::default());
        let fields = |head: &[u8]| {
            let mut lines: Vec<String> = String::from_utf8(head.to_vec())
                .unwrap()
                .split("\r\n")
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(fields(&out), fields(&written));

        // A previous X-Forwarded-For is kept in front of the client's IP when merged.
        let mut chained = HeaderMap::new();
        chained.insert("x-forwarded-for", "192.0.2.7".parse().unwrap());
        added.forwarded.unwrap().merge_into(&mut chained, None);
        assert_eq!(chained["x-forwarded-for"], "192.0.2.7, 10.0.0.1");
        assert_eq!(chained["x-forwarded-proto"], "https");
    }

    #[test]
    fn response_heads_are_framed_as_rfc_9112_says() {
        let get = Method::GET;
        let cases: &[(&str, &Method, Framing, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                &get,
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                &get,
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                &get,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n",
                &get,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                &get,
                Framing::Eof,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", &get, Framing::Eof, false),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                &get,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
                &get,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
                &Method::HEAD,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\n",
                &get,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
                &get,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\nConnection: Keep-Alive\r\n\r\n",
                &get,
                Framing::Length(1),
                true,
            ),
        ];
        for (text, method, framing, keep_alive) in cases {
            let h = head(text, method)
                .unwrap()
                .unwrap_or_else(|| panic!("incomplete: {text}"));
            assert_eq!((h.framing, h.keep_alive), (*framing, *keep_alive), "{text}");
        }
    }

    #[test]
    fn interim_responses_are_skipped_and_partial_heads_wait() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nx-k: v\r\ncontent-length: 2\r\n\r\nok"[..],
        );
        let h = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(
            (h.status, h.version),
            (StatusCode::CREATED, Version::HTTP_11)
        );
        assert_eq!(h.headers["x-k"], "v");
        assert_eq!(&buf[..], b"ok", "the head is consumed, the body left");

        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        for cut in 0..full.len() {
            assert!(
                head(std::str::from_utf8(&full[..cut]).unwrap(), &Method::GET)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn broken_response_heads_are_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",
            "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 999999 No\r\n\r\n",
            "SMTP ready\r\n\r\n",
        ] {
            assert!(head(text, &Method::GET).is_err(), "{text}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}\r\n", "a".repeat(MAX_HEAD + 1));
        assert!(head(&huge, &Method::GET).is_err());
    }

    /// A chunked body's data, its trailers, and what followed it.
    type Decoded = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

    /// Decodes `wire` fed `step` bytes at a time.
    fn decode(wire: &[u8], step: usize) -> Result<Decoded, WireError> {
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut state = Chunk::Size;
        let mut data = Vec::new();
        loop {
            match step_chunked(&mut buf, &mut state)? {
                Step::Data(d) => data.extend_from_slice(&d),
                Step::End(trailers) => return Ok((data, trailers, buf.to_vec())),
                Step::More => {
                    if fed == wire.len() {
                        return Err(WireError("ran out of input"));
                    }
                    let next = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..next]);
                    fed = next;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let wire = b"5;name=value\r\nhello\r\n6 \r\n world\r\n0\r\nx-sum: 11\r\n\r\nNEXT";
        for step in 1..=wire.len() {
            let (data, trailers, rest) = decode(wire, step).unwrap();
            assert_eq!(data, b"hello world", "step {step}");
            assert_eq!(trailers.unwrap()["x-sum"], "11");
            assert!(b"NEXT".starts_with(&rest), "step {step}: {rest:?}");
        }
        let (data, trailers, _) = decode(b"A\r\n0123456789\r\n0\r\n\r\n", 3).unwrap();
        assert_eq!((data, trailers.is_none()), (b"0123456789".to_vec(), true));
    }

    #[test]
    fn broken_chunked_bodies_are_refused() {
        for wire in [
            &b"5\r\nhelloXX0\r\n\r\n"[..],
            b"g\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"5 x\r\nhello\r\n",
            b"0\r\nbad header\r\n\r\n",
        ] {
            assert!(
                decode(wire, wire.len()).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn small_data_is_copied_so_the_read_buffer_stays_the_connections() {
        let mut buf = BytesMut::with_capacity(8192);
        buf.extend_from_slice(b"hello");
        let ptr = buf.as_ptr();
        let data = take_data(&mut buf, 5);
        assert_eq!(&data[..], b"hello");
        assert!(buf.is_empty());
        buf.reserve(8192);
        assert_eq!(buf.as_ptr(), ptr, "the buffer was reallocated");
    }
}
