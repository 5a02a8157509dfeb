// dgate/http: outbound HTTP and the types that go with it.
export const fetch = globalThis.fetch;
export const Headers = globalThis.Headers;
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;
export default { fetch, Headers, URL, URLSearchParams };
