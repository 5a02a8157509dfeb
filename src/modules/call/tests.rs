use super::*;

fn pair(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

#[test]
fn edits_apply_in_order() {
    let mut map = ::http::HeaderMap::new();
    map.insert("x-old", "1".parse().unwrap());
    apply_edits(
        &mut map,
        vec![
            HeaderEdit::Set(pair("x-a", "1")),
            HeaderEdit::Append(pair("x-a", "2")),
            HeaderEdit::Remove("x-old".to_string()),
            HeaderEdit::Set(pair("X-B", "3")),
        ],
    )
    .unwrap();
    let a: Vec<_> = map.get_all("x-a").iter().collect();
    assert_eq!(a, ["1", "2"]);
    assert_eq!(map.get("x-b").unwrap(), "3");
    assert!(map.get("x-old").is_none());
    assert_eq!(map.len(), 3);
}

#[test]
fn more_headers_than_a_map_holds_is_an_error_not_a_panic() {
    // A module's edits come from guest code: past `HeaderMap`'s 32 Ki names, `insert` and
    // `append` would panic the proxy's thread.
    let edits = (0..40_000)
        .map(|i| {
            let edit = pair(&format!("x-{i}"), "v");
            if i % 2 == 0 {
                HeaderEdit::Set(edit)
            } else {
                HeaderEdit::Append(edit)
            }
        })
        .collect();
    let mut map = ::http::HeaderMap::new();
    let err = apply_edits(&mut map, edits).unwrap_err();
    assert!(matches!(err, EditError::TooMany), "{err}");
}

#[test]
fn one_header_reads_as_the_whole_list_does() {
    let mut map = ::http::HeaderMap::new();
    map.append("x-user", "alice".parse().unwrap());
    map.append("accept", "text/html".parse().unwrap());
    map.append("accept", "*/*".parse().unwrap());
    assert_eq!(header_value(&map, "X-User").as_deref(), Some("alice"));
    // Every value, in order, joined as the hook's `Headers.get` joins the list.
    assert_eq!(
        header_value(&map, "accept").as_deref(),
        Some("text/html, */*")
    );
    let pairs = header_pairs(&map);
    let joined: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k == "accept")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(joined.join(", "), "text/html, */*");
    assert_eq!(header_value(&map, "x-missing"), None);
    // Not a header name: nothing has it.
    assert_eq!(header_value(&map, "bad name"), None);
    assert_eq!(header_value(&map, ""), None);
}
