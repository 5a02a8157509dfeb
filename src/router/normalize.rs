//! A request path as routing and the upstream must both see it: RFC 3986 dot-segments removed
//! (section 5.2.4), `%2e` counted as the dot it encodes. Otherwise `/public/../admin/x` would
//! match `/public/*` here and reach `/admin/x` at an upstream that normalises it itself.

use std::borrow::Cow;

/// A path that hides a dot-segment behind an encoded separator (`..%2f`, `.%5c`): whether an
/// upstream reads it as one cannot be known, so it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the path has a dot-segment next to an encoded slash or backslash")]
pub struct HiddenDotSegment;

/// `path` (absolute, without the query) with its dot-segments removed; borrowed when there were
/// none.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, HiddenDotSegment> {
    let bytes = path.as_bytes();
    // Nothing to do for the usual path: no segment starting with a dot, nothing encoded.
    if !bytes.contains(&b'%') && !path.contains("/.") {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_dots(path);
    let mut out: Vec<&str> = Vec::new();
    let rest = decoded.strip_prefix('/').unwrap_or(&decoded);
    let mut segments = rest.split('/').peekable();
    let mut changed = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => changed = true,
            ".." => {
                changed = true;
                out.pop();
            }
            s => {
                if hides_dot_segment(s) {
                    return Err(HiddenDotSegment);
                }
                out.push(s);
                continue;
            }
        }
        // "/a/." and "/a/b/.." end in a slash.
        if last {
            out.push("");
        }
    }
    if !changed {
        // At most `%2e`s inside segments: the path as it came.
        return Ok(Cow::Borrowed(path));
    }
    Ok(Cow::Owned(format!("/{}", out.join("/"))))
}

/// `path` with `%2e` and `%2E` as `.`.
fn decode_dots(path: &str) -> Cow<'_, str> {
    if !path.contains("%2e") && !path.contains("%2E") {
        return Cow::Borrowed(path);
    }
    Cow::Owned(path.replace("%2e", ".").replace("%2E", "."))
}

/// Whether `segment`, cut at encoded slashes and backslashes, has a `.` or `..` piece.
fn hides_dot_segment(segment: &str) -> bool {
    if !segment.contains('%') || !segment.contains('.') {
        return false;
    }
    let lower = segment.to_ascii_lowercase();
    lower
        .split("%2f")
        .flat_map(|p| p.split("%5c"))
        .any(|p| p == "." || p == "..")
}
