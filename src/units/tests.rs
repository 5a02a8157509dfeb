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
