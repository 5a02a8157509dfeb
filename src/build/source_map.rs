//! The source map a component carries in a custom section, so errors at run time point into the
//! user's file.

use super::ts::remap_positions;

/// The custom section that carries a component's module name and source map, so errors at run
/// time point into the user's file: `{"file": "mod.ts", "map": <source map JSON>}`.
pub const SOURCE_MAP_SECTION: &str = "dgate:source-map";

/// Where a component's JS came from: its file name (as stack traces name it) and source map.
pub struct SourceInfo {
    pub file: String,
    map: oxc_sourcemap::SourceMap<'static>,
}

impl SourceInfo {
    /// Reads the [`SOURCE_MAP_SECTION`] of a component, if it has one that parses.
    pub fn from_component(component: &[u8]) -> Option<SourceInfo> {
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
                continue;
            };
            if section.name() != SOURCE_MAP_SECTION {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(section.data()).ok()?;
            let file = v.get("file")?.as_str()?.to_string();
            let map = oxc_sourcemap::SourceMap::from_json_string(v.get("map")?.as_str()?)
                .ok()?
                .into_owned();
            return Some(SourceInfo { file, map });
        }
        None
    }

    /// `text` with positions in the generated JS turned into positions in the source.
    pub fn remap(&self, text: &str) -> String {
        remap_positions(&self.map, &self.file, text)
    }
}
