use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use super::wire::*;

const LIMITS: Limits = Limits {
    max_head: 8192,
    max_headers: 10,
    spare_headers: 5,
};

fn parse(text: &str) -> Parsed {
    parse_request(text.as_bytes(), &LIMITS)
}

fn lean(text: &str) -> Head {
    match parse(text) {
        Parsed::Request(head) => head,
        other => panic!("{text:?} was not taken: {other:?}"),
    }
}

fn hyper(text: &str) -> bool {
    matches!(parse(text), Parsed::Hyper)
}

#[test]
fn a_bodyless_request_is_parsed_with_its_length_and_headers() {
    let text =
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-One: 1\r\nx-one: 2\r\n\r\nGET /next";
    let head = lean(text);
    assert_eq!(head.len, text.find("GET /next").unwrap());
    assert!(!head.close);
    let req = head.request;
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), "/a/b");
    assert_eq!(req.uri().query(), Some("c=d"));
    assert_eq!(req.headers()[header::HOST], "example.com");
    let ones: Vec<_> = req.headers().get_all("x-one").iter().collect();
    assert_eq!(ones, ["1", "2"]);
    // Room for what the proxy adds upstream, without growing.
    assert!(req.headers().capacity() >= 3 + LIMITS.spare_headers);
}

#[test]
fn an_incomplete_head_asks_for_more_until_it_outgrows_the_limit() {
    assert!(matches!(
        parse("GET / HTTP/1.1\r\nhost: x\r\n"),
        Parsed::Partial
    ));
    assert!(matches!(parse(""), Parsed::Partial));
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(LIMITS.max_head));
    assert!(
        hyper(&long),
        "hyper answers a head over the limit (431/414)"
    );
}

#[test]
fn requests_with_a_body_or_a_protocol_switch_go_to_hyper() {
    assert!(hyper("POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"));
    assert!(hyper(
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    ));
    assert!(hyper("GET / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n"));
    assert!(hyper(
        "GET /ws HTTP/1.1\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
    ));
    assert!(hyper("CONNECT example.com:443 HTTP/1.1\r\n\r\n"));
    // A zero length is no body.
    let head = lean("POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(head.request.method(), Method::POST);
}

#[test]
fn other_protocols_forms_and_malformed_heads_go_to_hyper() {
    assert!(
        hyper("GET / HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 keep-alive is hyper's"
    );
    assert!(hyper("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "h2c's preface");
    assert!(hyper("GET http://example.com/ HTTP/1.1\r\n\r\n"));
    assert!(hyper("OPTIONS * HTTP/1.1\r\n\r\n"));
    assert!(hyper("GET / HTTP/1.1\r\nbad header\r\n\r\n"));
    assert!(hyper("G(T / HTTP/1.1\r\n\r\n"));
    let many: String = (0..=LIMITS.max_headers)
        .map(|i| format!("x-{i}: v\r\n"))
        .collect();
    assert!(
        hyper(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
        "over max_headers"
    );
}

#[test]
fn connection_close_is_noticed() {
    assert!(lean("GET / HTTP/1.1\r\nconnection: keep-alive, Close\r\n\r\n").close);
    assert!(!lean("GET / HTTP/1.1\r\nconnection: keep-alive\r\n\r\n").close);
}

fn encode(
    status: StatusCode,
    headers: &[(&str, &str)],
    exact: Option<u64>,
    method: &Method,
) -> (String, Result<Plan, HeadError>) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let mut dst = Vec::new();
    let plan = encode_response(&mut dst, status, &map, exact, method, true);
    (String::from_utf8(dst).unwrap(), plan)
}

fn plan(framing: Framing) -> Plan {
    Plan {
        framing,
        keep_alive: true,
        trailers: None,
    }
}

#[test]
fn a_known_length_is_written_once_and_a_date_added() {
    let date = ("date", "Sat, 05 Dec 2026 07:00:00 GMT");
    let (text, p) = encode(StatusCode::OK, &[("x-a", "1"), date], Some(5), &Method::GET);
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: Sat, 05 Dec 2026 07:00:00 GMT\r\ncontent-length: 5\r\n\r\n"
    );
    assert_eq!(p, Ok(plan(Framing::Length(5))));
    // The upstream's own length header stays as it came; a copy is not written twice.
    let (text, p) = encode(
        StatusCode::NOT_FOUND,
        &[("content-length", "5"), ("content-length", "5")],
        None,
        &Method::GET,
    );
    assert!(text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\ndate: "));
    assert_eq!(text.matches("content-length").count(), 1);
    assert_eq!(p, Ok(plan(Framing::Length(5))));
}

#[test]
fn an_unknown_length_is_chunked_and_an_empty_body_says_zero() {
    let (text, p) = encode(StatusCode::OK, &[], None, &Method::GET);
    assert!(text.contains("transfer-encoding: chunked\r\n"));
    assert_eq!(p, Ok(plan(Framing::Chunked)));
    // A length header on an empty body would make the client wait: the body's says 0.
    let (text, p) = encode(
        StatusCode::OK,
        &[("content-length", "9")],
        Some(0),
        &Method::GET,
    );
    assert!(text.contains("content-length: 0\r\n") && !text.contains("content-length: 9"));
    assert_eq!(p, Ok(plan(Framing::Length(0))));
    let (_, p) = encode(
        StatusCode::OK,
        &[("content-length", "x")],
        None,
        &Method::GET,
    );
    assert!(p.is_err());
}

#[test]
fn head_204_and_304_answers_have_no_body() {
    // HEAD keeps the length the upstream announced, and sends nothing.
    let (text, p) = encode(
        StatusCode::OK,
        &[("content-length", "42")],
        Some(0),
        &Method::HEAD,
    );
    assert!(text.contains("content-length: 42\r\n"));
    assert_eq!(p, Ok(plan(Framing::Length(0))));
    let (text, _) = encode(StatusCode::OK, &[], Some(0), &Method::HEAD);
    assert!(!text.contains("content-length"));
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        let (text, p) = encode(status, &[("content-length", "42")], None, &Method::GET);
        assert!(!text.contains("content-length") && !text.contains("chunked"));
        assert_eq!(p, Ok(plan(Framing::Length(0))));
    }
}

#[test]
fn connection_close_and_trailers_are_honoured() {
    let (_, p) = encode(
        StatusCode::OK,
        &[("connection", "close")],
        Some(1),
        &Method::GET,
    );
    assert!(!p.unwrap().keep_alive);
    let (_, p) = encode(
        StatusCode::OK,
        &[("trailer", "grpc-status, x-b")],
        None,
        &Method::GET,
    );
    let p = p.unwrap();
    assert_eq!(p.trailers.as_ref().unwrap(), &["grpc-status", "x-b"]);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("x-other", HeaderValue::from_static("no"));
    let mut end = Vec::new();
    chunked_end(&mut end, Some(&trailers), p.trailers.as_deref());
    assert_eq!(end, b"0\r\ngrpc-status: 0\r\n\r\n");
    let mut chunk = Vec::new();
    chunk_head(&mut chunk, 300);
    assert_eq!(chunk, b"12c\r\n");
    let (_, p) = encode(StatusCode::CONTINUE, &[], None, &Method::GET);
    assert!(p.is_err());
}
