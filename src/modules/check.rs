//! Checking a component against the module world without compiling it: cheap enough for the
//! admin API to run on every module write.

use super::LoadError;
use super::engine::{NOT_A_COMPONENT, NOT_WASM, is_component};

/// Checks, without compiling it, that `bytes` is a component of the `dgate:module` world: it must
/// export `dgate:module/hooks@0.1.0` and import nothing but dgate's interfaces and WASI (which
/// the preview1 adapter brings). Cheap enough for the admin API to run on every module write.
pub fn check_component(bytes: &[u8]) -> Result<(), LoadError> {
    use wit_component::DecodedWasm;
    let invalid = |m: String| Err(LoadError::Invalid(m));
    if !bytes.starts_with(b"\0asm") {
        return invalid(NOT_WASM.into());
    }
    if !is_component(bytes) {
        return invalid(NOT_A_COMPONENT.into());
    }
    let decoded = wit_component::decode(bytes)
        .map_err(|e| LoadError::Invalid(format!("this is not a valid component: {e:#}")))?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        return invalid("this is a WIT package, not a component".into());
    };
    let world = &resolve.worlds[world];
    let name = |key: &wit_parser::WorldKey, item: &wit_parser::WorldItem| match item {
        wit_parser::WorldItem::Interface { id, .. } => resolve
            .id_of(*id)
            .unwrap_or_else(|| resolve.name_world_key(key)),
        _ => resolve.name_world_key(key),
    };
    let exports: Vec<String> = world.exports.iter().map(|(k, i)| name(k, i)).collect();
    if !exports.iter().any(|e| e == "dgate:module/hooks@0.1.0") {
        return invalid(format!(
            "the component does not export dgate:module/hooks@0.1.0 (it exports {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ));
    }
    for (k, i) in &world.imports {
        if matches!(i, wit_parser::WorldItem::Type { .. }) {
            continue;
        }
        let n = name(k, i);
        let known = n.starts_with("wasi:")
            || ["types", "http", "documents", "cache"]
                .iter()
                .any(|i| n == format!("dgate:module/{i}@0.1.0"));
        if !known {
            return invalid(format!(
                "the component imports {n}, which dgate does not provide"
            ));
        }
    }
    Ok(())
}
