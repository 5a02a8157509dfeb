//! The one place that generates bindings for `wit/dgate.wit`: the host side of the
//! `dgate-module` world, and names for the generated types the rest of dgate uses.

wasmtime::component::bindgen!({
    path: "wit",
    world: "dgate-module",
    imports: {
        "dgate:module/http.fetch": async,
        "dgate:module/http.sleep": async,
        "dgate:module/http.request-body": async,
        "dgate:module/http.response-body": async,
        "dgate:module/documents": async,
        default: trappable,
    },
    exports: { default: async },
});

pub use dgate::module::documents::Document;
pub use dgate::module::http::{FetchRequest, FetchResponse};
pub use dgate::module::types::{
    Field, HeaderEdit, Hook, HookError, HostError, LogLevel, RequestChanges, ResponseChanges,
};

impl Hook {
    /// The JS export name.
    pub fn js_name(self) -> &'static str {
        match self {
            Hook::FetchUpstream => "fetchUpstream",
            Hook::RequestModifier => "requestModifier",
            Hook::ResponseModifier => "responseModifier",
            Hook::ErrorHandler => "errorHandler",
            Hook::RequestHandler => "requestHandler",
        }
    }

    pub fn from_js_name(name: &str) -> Option<Hook> {
        [
            Hook::FetchUpstream,
            Hook::RequestModifier,
            Hook::ResponseModifier,
            Hook::ErrorHandler,
            Hook::RequestHandler,
        ]
        .into_iter()
        .find(|h| h.js_name() == name)
    }
}
