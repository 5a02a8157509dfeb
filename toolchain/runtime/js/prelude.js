// The DGate module API on top of the native functions: context objects for the hooks, console,
// fetch, URL and URLSearchParams. Evaluated once, before the built-in modules and the user's
// module, while the module is being built.
(() => {
  const N = globalThis.__dgate_native;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  const toBytes = (body) => {
    if (body === undefined || body === null) return new Uint8Array(0);
    if (body instanceof Uint8Array) return body;
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (typeof body === "string") return encoder.encode(body);
    return encoder.encode(JSON.stringify(body));
  };

  // Header lists, kept flat as [name, value, name, value, ...] with lower-case names (the form
  // the host passes them in, so a hook that sets one header copies nothing); a name may repeat.
  class Headers {
    constructor(init) {
      this._f = [];
      if (init instanceof Headers) this._f = init._f.slice();
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    // Wraps a flat list from the host without copying it.
    static _adopt(flat) {
      const h = Object.create(Headers.prototype);
      h._f = flat;
      return h;
    }
    get(name) {
      const n = String(name).toLowerCase();
      const f = this._f;
      let out = null;
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) out = out === null ? f[i + 1] : out + ", " + f[i + 1];
      return out;
    }
    getAll(name) {
      const n = String(name).toLowerCase();
      const f = this._f;
      const out = [];
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) out.push(f[i + 1]);
      return out;
    }
    has(name) {
      const n = String(name).toLowerCase();
      const f = this._f;
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) return true;
      return false;
    }
    set(name, value) {
      this.delete(name);
      this._f.push(String(name).toLowerCase(), String(value));
      return this;
    }
    append(name, value) {
      this._f.push(String(name).toLowerCase(), String(value));
      return this;
    }
    add(name, value) {
      return this.append(name, value);
    }
    delete(name) {
      const n = String(name).toLowerCase();
      const f = this._f;
      let j = 0;
      for (let i = 0; i < f.length; i += 2) {
        if (f[i] !== n) {
          f[j++] = f[i];
          f[j++] = f[i + 1];
        }
      }
      f.length = j;
      return this;
    }
    _pairs() {
      const out = [];
      for (let i = 0; i < this._f.length; i += 2) out.push([this._f[i], this._f[i + 1]]);
      return out;
    }
    forEach(fn, self) {
      for (const [k, v] of this._pairs()) fn.call(self, v, k, this);
    }
    keys() { return this._pairs().map(([k]) => k)[Symbol.iterator](); }
    values() { return this._pairs().map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this._pairs()[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toJSON() {
      const o = {};
      for (const [k, v] of this._pairs()) o[k] = o[k] === undefined ? v : o[k] + ", " + v;
      return o;
    }
  }

  const decodeComponent = (s) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, " "));
    } catch (_) {
      return s;
    }
  };
  const encodeComponent = (s) => encodeURIComponent(s).replace(/%20/g, "+");

  class URLSearchParams {
    constructor(init) {
      this._list = [];
      if (init instanceof URLSearchParams) init = init.toString();
      if (typeof init === "string") {
        for (const part of init.replace(/^\?/, "").split("&")) {
          if (!part) continue;
          const eq = part.indexOf("=");
          const k = eq < 0 ? part : part.slice(0, eq);
          const v = eq < 0 ? "" : part.slice(eq + 1);
          this._list.push([decodeComponent(k), decodeComponent(v)]);
        }
      } else if (Array.isArray(init)) {
        for (const [k, v] of init) this._list.push([String(k), String(v)]);
      } else if (init && typeof init === "object") {
        for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      }
      this._onChange = null;
    }
    _changed() { if (this._onChange) this._onChange(); }
    get(name) {
      const p = this._list.find(([k]) => k === name);
      return p ? p[1] : null;
    }
    getAll(name) { return this._list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name) { return this._list.some(([k]) => k === name); }
    set(name, value) {
      const i = this._list.findIndex(([k]) => k === name);
      this._list = this._list.filter(([k], j) => k !== name || j === i);
      if (i < 0) this._list.push([String(name), String(value)]);
      else this._list[this._list.findIndex(([k]) => k === name)][1] = String(value);
      this._changed();
    }
    append(name, value) { this._list.push([String(name), String(value)]); this._changed(); }
    delete(name) { this._list = this._list.filter(([k]) => k !== name); this._changed(); }
    forEach(fn, self) { for (const [k, v] of this._list) fn.call(self, v, k, this); }
    keys() { return this._list.map(([k]) => k)[Symbol.iterator](); }
    values() { return this._list.map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    get size() { return this._list.length; }
    toString() { return this._list.map(([k, v]) => encodeComponent(k) + "=" + encodeComponent(v)).join("&"); }
  }

  const URL_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(?:([^:@/?#]*)(?::([^@/?#]*))?@)?(\[[^\]]+\]|[^:/?#]*)(?::(\d+))?([^?#]*)(\?[^#]*)?(#.*)?$/;
  const DEFAULT_PORTS = { "http:": "80", "https:": "443" };

  class URL {
    constructor(url, base) {
      url = String(url);
      let m = URL_RE.exec(url);
      if (!m && base !== undefined) {
        const b = new URL(base);
        if (url.startsWith("//")) return new URL(b.protocol + url);
        let path = url;
        let rest = "";
        const cut = path.search(/[?#]/);
        if (cut >= 0) { rest = path.slice(cut); path = path.slice(0, cut); }
        if (path === "") path = b.pathname;
        else if (!path.startsWith("/")) path = b.pathname.replace(/[^/]*$/, "") + path;
        if (rest.startsWith("#")) rest = b.search + rest;
        m = URL_RE.exec(b.origin + path + rest);
      }
      if (!m) throw new TypeError("Invalid URL: " + url);
      this.protocol = m[1].toLowerCase() + ":";
      this.username = m[2] || "";
      this.password = m[3] || "";
      this.hostname = (m[4] || "").toLowerCase();
      this.port = m[5] && m[5] !== DEFAULT_PORTS[this.protocol] ? m[5] : "";
      this.pathname = normalizePath(m[6] || "/");
      this.hash = m[8] && m[8] !== "#" ? m[8] : "";
      this.searchParams = new URLSearchParams(m[7] || "");
      this._search = m[7] && m[7] !== "?" ? m[7] : "";
      this.searchParams._onChange = () => {
        const s = this.searchParams.toString();
        this._search = s ? "?" + s : "";
      };
    }
    get search() { return this._search; }
    set search(v) {
      v = String(v);
      this.searchParams = new URLSearchParams(v);
      this._search = v && v !== "?" ? (v.startsWith("?") ? v : "?" + v) : "";
    }
    get host() { return this.hostname + (this.port ? ":" + this.port : ""); }
    get origin() { return this.protocol + "//" + this.host; }
    get href() {
      const auth = this.username ? this.username + (this.password ? ":" + this.password : "") + "@" : "";
      return this.protocol + "//" + auth + this.host + this.pathname + this.search + this.hash;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  function normalizePath(p) {
    if (!p.startsWith("/")) p = "/" + p;
    const out = [];
    const segs = p.split("/").slice(1);
    segs.forEach((s, i) => {
      if (s === "..") { out.pop(); if (i === segs.length - 1) out.push(""); }
      else if (s === ".") { if (i === segs.length - 1) out.push(""); }
      else out.push(s);
    });
    return "/" + out.join("/");
  }

  const format = (args) =>
    args
      .map((a) => {
        if (typeof a === "string") return a;
        if (a instanceof Error) return a.stack ? a.message + "\n" + a.stack : a.message;
        try {
          const s = JSON.stringify(a);
          return s === undefined ? String(a) : s;
        } catch (_) {
          return String(a);
        }
      })
      .join(" ");
  globalThis.console = {
    debug: (...a) => N.log(0, format(a)),
    trace: (...a) => N.log(0, format(a)),
    log: (...a) => N.log(1, format(a)),
    info: (...a) => N.log(1, format(a)),
    warn: (...a) => N.log(2, format(a)),
    error: (...a) => N.log(3, format(a)),
  };

  const parseJson = (bytes, what) => {
    const text = decoder.decode(bytes);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new SyntaxError(what + " is not JSON: " + e.message);
    }
  };

  class FetchResponse {
    constructor(r) {
      this.status = r.status;
      this.ok = r.status >= 200 && r.status < 300;
      this.headers = Headers._adopt(r.headers);
      this._body = r.body;
    }
    bytes() { return Promise.resolve(this._body); }
    arrayBuffer() { return Promise.resolve(this._body.buffer.slice(this._body.byteOffset, this._body.byteOffset + this._body.byteLength)); }
    text() { return Promise.resolve(decoder.decode(this._body)); }
    json() {
      try {
        return Promise.resolve(parseJson(this._body, "the response"));
      } catch (e) {
        return Promise.reject(e);
      }
    }
  }

  // fetch(url, {method, headers, body}) -> Promise<Response>. The host waits for the answer; the
  // promise settles on the next turn of the job queue.
  globalThis.fetch = function fetch(input, init) {
    try {
      init = init || {};
      const url = input instanceof URL ? input.href : String(input);
      const method = String(init.method || "GET").toUpperCase();
      const headers = new Headers(init.headers)._f;
      const body = init.body === undefined || init.body === null ? undefined : toBytes(init.body);
      return Promise.resolve(new FetchResponse(N.fetch(method, url, headers, body)));
    } catch (e) {
      return Promise.reject(e);
    }
  };

  globalThis.Headers = Headers;
  globalThis.URL = URL;
  globalThis.URLSearchParams = URLSearchParams;

  // --- hook contexts --------------------------------------------------------------------------

  // Hook contexts are built lazily: a hook that only sets one header never parses the query,
  // and what a hook did not touch is not copied back to the host.

  // The client request. In requestModifier, method, path, query and headers may be changed,
  // and writeBody/writeJson replace the body sent upstream.
  class ModuleRequest {
    // `a`: [method, uri, headers, remoteAddress, host, proto] as the host sent them.
    constructor(a) {
      this.method = a[0];
      this._a = a;
      this._path = undefined;
      this._rawQuery = undefined;
      this._origPath = undefined;
      this._query = undefined;
      this._queryDirty = false;
      this._headers = undefined;
      this._body = undefined;
    }
    _split() {
      const uri = this._a[1];
      const q = uri.indexOf("?");
      this._path = q < 0 ? uri : uri.slice(0, q);
      this._rawQuery = q < 0 ? "" : uri.slice(q + 1);
      this._origPath = this._path;
    }
    get path() {
      if (this._path === undefined) this._split();
      return this._path;
    }
    set path(v) {
      if (this._path === undefined) this._split();
      this._path = String(v);
    }
    get query() {
      if (this._query === undefined) {
        if (this._path === undefined) this._split();
        this._query = new URLSearchParams(this._rawQuery);
        this._query._onChange = () => { this._queryDirty = true; };
      }
      return this._query;
    }
    set query(v) {
      this._query = v instanceof URLSearchParams ? v : new URLSearchParams(v);
      this._queryDirty = true;
    }
    get headers() {
      if (this._headers === undefined) this._headers = Headers._adopt(this._a[2]);
      return this._headers;
    }
    set headers(v) {
      this._headers = v instanceof Headers ? v : new Headers(v);
    }
    get host() { return this._a[4]; }
    get remoteAddress() { return this._a[3]; }
    get protocol() { return this._a[5]; }
    get uri() {
      const path = this.path;
      const q = this._queryDirty ? this._query.toString() : this._rawQuery;
      return path + (q ? "?" + q : "");
    }
    get url() { return this._a[5] + "://" + this._a[4] + this.uri; }
    readBody() {
      if (this._body === undefined) this._body = N.requestBody();
      return this._body;
    }
    readText() { return decoder.decode(this.readBody()); }
    readJson() { return parseJson(this.readBody(), "the request body"); }
    writeBody(body) {
      this._body = toBytes(body);
      N.setRequestBody(this._body);
      return this;
    }
    writeJson(value) {
      this.headers.set("content-type", "application/json");
      return this.writeBody(JSON.stringify(value));
    }
    // What changed, for the host: only the fields a hook touched.
    _outcome() {
      const out = {};
      if (this.method !== this._a[0]) out.method = String(this.method).toUpperCase();
      if (this._queryDirty || (this._path !== undefined && this._path !== this._origPath)) out.uri = this.uri;
      if (this._headers !== undefined) out.headers = this._headers._f;
      return out;
    }
  }

  // The upstream's response, in responseModifier.
  class UpstreamResponse {
    constructor(status, headers) {
      this.statusCode = status;
      this._rawHeaders = headers;
      this._headers = undefined;
      this._body = undefined;
    }
    get status() { return this.statusCode; }
    set status(v) { this.statusCode = v; }
    get headers() {
      if (this._headers === undefined) this._headers = Headers._adopt(this._rawHeaders);
      return this._headers;
    }
    set headers(v) {
      this._headers = v instanceof Headers ? v : new Headers(v);
    }
    readBody() {
      if (this._body === undefined) this._body = N.responseBody();
      return this._body;
    }
    readText() { return decoder.decode(this.readBody()); }
    readJson() { return parseJson(this.readBody(), "the upstream response body"); }
    writeBody(body) {
      this._body = toBytes(body);
      N.setResponseBody(this._body);
      this.headers.delete("content-length");
      return this;
    }
    writeJson(value) {
      this.headers.set("content-type", "application/json");
      return this.writeBody(JSON.stringify(value));
    }
  }

  // The response a requestHandler or errorHandler sends.
  class ModuleResponse {
    constructor() {
      this.statusCode = 200;
      this.headers = new Headers();
      this.sent = false;
    }
    status(code) {
      this.statusCode = code;
      return this;
    }
    setHeader(name, value) {
      this.headers.set(name, value);
      return this;
    }
    send(body) {
      if (body !== undefined && body !== null) {
        if (!this.headers.has("content-type")) {
          this.headers.set(
            "content-type",
            typeof body === "string" ? "text/plain; charset=utf-8"
              : body instanceof Uint8Array || body instanceof ArrayBuffer ? "application/octet-stream"
              : "application/json",
          );
        }
        N.setResponseBody(toBytes(body));
      }
      this.sent = true;
      return this;
    }
    json(value) {
      this.headers.set("content-type", "application/json");
      N.setResponseBody(encoder.encode(JSON.stringify(value === undefined ? null : value)));
      this.sent = true;
      return this;
    }
    end() {
      this.sent = true;
      return this;
    }
    redirect(url, code) {
      this.statusCode = code || 302;
      this.headers.set("location", String(url));
      this.sent = true;
      return this;
    }
  }

  class ModuleContext {
    constructor(namespace, route, service, serviceUrls, params, req, up, res) {
      this._namespace = namespace;
      this._route = route;
      this._service = service;
      this._serviceUrls = serviceUrls;
      this._params = params;
      this._reqArgs = req;
      this._req = undefined;
      this._up = up;
      this._res = res;
    }
    request() {
      if (this._req === undefined) {
        this._req = new ModuleRequest(this._reqArgs);
      }
      return this._req;
    }
    upstream() { return this._up; }
    response() { return this._res; }
    namespace() { return { name: this._namespace }; }
    route() { return { name: this._route, namespace: this._namespace }; }
    service() {
      return this._service === undefined || this._service === null
        ? undefined
        : { name: this._service, urls: this._serviceUrls.slice() };
    }
    // Parameters come flat: [name, value, name, value, ...].
    pathParam(name) {
      const p = this._params;
      for (let i = 0; i < p.length; i += 2) if (p[i] === name) return p[i + 1];
      return null;
    }
    pathParams() {
      const o = {};
      const p = this._params;
      for (let i = 0; i < p.length; i += 2) o[p[i]] = p[i + 1];
      return o;
    }
    query() { return this.request().query; }
  }

  const validStatus = (s) => Number.isInteger(s) && s >= 100 && s <= 599;

  function finish(hook, ctx, value) {
    switch (hook) {
      case "fetchUpstream": {
        const url = value instanceof URL ? value.href : value;
        if (typeof url !== "string" || !url) return { invalid: "fetchUpstream must return a URL string" };
        return { url };
      }
      case "requestModifier":
        return ctx._req === undefined ? {} : ctx._req._outcome();
      case "responseModifier": {
        const up = ctx._up;
        if (!validStatus(up.statusCode)) return { invalid: "status " + up.statusCode + " is not an HTTP status" };
        return up._headers === undefined ? { status: up.statusCode } : { status: up.statusCode, headers: up._headers._f };
      }
      default: {
        const res = ctx._res;
        if (!validStatus(res.statusCode)) return { invalid: "status " + res.statusCode + " is not an HTTP status" };
        return { status: res.statusCode, headers: res.headers._f };
      }
    }
  }

  // Called by the runtime for each hook call, with the records' fields as arguments (no objects
  // to build on the host side); returns the outcome (or a promise of it).
  globalThis.__dgate_run = function run(
    hook, namespace, route, service, serviceUrls, params,
    method, uri, headers, remoteAddress, host, proto,
    resStatus, resHeaders, errStatus, errMessage,
  ) {
    const fn = globalThis.__dgate_hooks[hook];
    const up = hook === "responseModifier" ? new UpstreamResponse(resStatus, resHeaders) : undefined;
    const res = hook === "requestHandler" || hook === "errorHandler" ? new ModuleResponse() : undefined;
    const req = [method, uri, headers, remoteAddress, host, proto];
    const ctx = new ModuleContext(namespace, route, service, serviceUrls, params, req, up, res);
    let result;
    if (hook === "responseModifier") result = fn(ctx, up);
    else if (hook === "errorHandler") {
      const error = new Error(errMessage);
      error.status = errStatus;
      result = fn(ctx, error);
    } else result = fn(ctx);
    if (result && typeof result.then === "function") return result.then((v) => finish(hook, ctx, v));
    return finish(hook, ctx, result);
  };
})();
