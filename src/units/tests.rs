use super::*;

#[test]
fn byte_sizes() {
    for (s, n) in [
        ("10", 10),
        ("1KiB", 1024),
        ("8MiB", 8 << 20),
        ("1GiB", 1 << 30),
        ("2MB", 2_000_000),
    ] {
        assert_eq!(s.parse::<ByteSize>().unwrap(), ByteSize(n), "{s}");
    }
    assert!("x".parse::<ByteSize>().is_err());
    assert!("99999999999999GiB".parse::<ByteSize>().is_err());
    assert_eq!(ByteSize(8 << 20).to_string(), "8MiB");
    assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
}

#[test]
fn durations_in_dgate_form() {
    for (s, ms) in [
        ("1.5s", 1500),
        ("1m30s", 90_000),
        ("250ms", 250),
        ("1h", 3_600_000),
        ("0", 0),
        ("1ns", 1),
        ("1500us", 2),
        ("1m 30s", 90_000),
    ] {
        assert_eq!(nanos::parse(s), Ok(Millis(ms)), "{s}");
    }
    for bad in ["", "1", "1x", "s", ".s", "-1s"] {
        assert!(nanos::parse(bad).is_err(), "{bad}");
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct T {
        #[serde(default, with = "nanos", skip_serializing_if = "Option::is_none")]
        d: Option<Millis>,
    }
    let read = |j: &str| serde_json::from_str::<T>(j).map(|t| t.d);
    assert_eq!(read(r#"{"d": 5000000000}"#).unwrap(), Some(Millis(5000)));
    assert_eq!(read(r#"{"d": "5s"}"#).unwrap(), Some(Millis(5000)));
    assert_eq!(read(r#"{"d": null}"#).unwrap(), None);
    assert_eq!(read("{}").unwrap(), None);
    assert!(read(r#"{"d": -1}"#).is_err());
    let shown = serde_json::to_string(&T {
        d: Some(Millis(1500)),
    })
    .unwrap();
    assert_eq!(shown, r#"{"d":1500000000}"#);
}
