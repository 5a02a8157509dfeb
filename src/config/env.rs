//! `${VAR}` and `${VAR:-default}` substitution in the config text, before YAML parsing.

use super::ConfigError;

/// Replaces every `${NAME}` with `lookup(NAME)` and every `${NAME:-default}` with the variable's value
/// when set and non-empty, else `default`. `$${` writes a literal `${`.
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let at = text.len() - rest.len() + start;
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let body = &rest[start + 2..];
        let end = body.find('}').ok_or_else(|| ConfigError::BadSubstitution {
            at,
            reason: "missing closing '}'".into(),
        })?;
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(ConfigError::BadSubstitution {
                at,
                reason: format!("{name:?} is not a variable name"),
            });
        }
        let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
        match (value, default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(ConfigError::UnsetVariable {
                    var: name.to_string(),
                });
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
