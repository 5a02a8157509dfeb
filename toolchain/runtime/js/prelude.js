// The DGate module API on top of the native functions: context objects for the hooks, console,
// fetch, URL and URLSearchParams. Evaluated once, before the built-in modules and the user's
// module, while the module is being built.
(() => {
  "use strict";
  const N = globalThis.__dgate_native;
  // Only the prelude may tell the runtime which objects to watch (see `fresh`).
  const keep = N.keep;
  delete N.keep;
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

  // Header lists, kept flat as [name, value, name, value, ...] with lower-case names; a name may
  // repeat. The headers of the call in flight are loaded from the host only when a hook reads
  // them: until then set/append/delete are only recorded, and the host gets the edits, flat as
  // [code, name, value, ...] (0 clear, 1 set, 2 append, 3 delete). `_ops` is false for plain
  // headers, and for tracked ones null until the first edit, then the edits.
  const removeName = (f, n) => {
    let j = 0;
    for (let i = 0; i < f.length; i += 2) {
      if (f[i] !== n) {
        f[j++] = f[i];
        f[j++] = f[i + 1];
      }
    }
    f.length = j;
  };
  const applyEdit = (f, code, n, v) => {
    if (code === 0) f.length = 0;
    else if (code === 1) { removeName(f, n); f.push(n, v); }
    else if (code === 2) f.push(n, v);
    else removeName(f, n);
  };

  class Headers {
    constructor(init) {
      this._f = [];
      this._ops = false;
      if (init instanceof Headers) this._f = init._list().slice();
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    // Wraps a flat list from the host without copying it.
    static _adopt(flat) {
      const h = Object.create(Headers.prototype);
      h._f = flat;
      h._ops = false;
      return h;
    }
    // Headers whose changes go back to the host as edits: of the call `seq`'s request (which 0)
    // or upstream response (1), loaded on first read, or of an empty list (which -1). Until
    // loaded, `_f` is the number `seq * 2 + which` that says where from: an object with more
    // than two properties grows its property array, one allocation per property.
    // (`run`, and the runtime's `run_reused`, renew reused ones with the same two writes.)
    static _tracked(seq, which) {
      const h = Object.create(Headers.prototype);
      h._f = which < 0 ? [] : seq * 2 + which;
      h._ops = null;
      return h;
    }
    _list() {
      if (typeof this._f === "number") {
        const which = this._f % 2;
        const f = N.headers((this._f - which) / 2, which);
        const ops = this._ops;
        if (ops) for (let i = 0; i < ops.length; i += 3) applyEdit(f, ops[i], String(ops[i + 1]).toLowerCase(), String(ops[i + 2]));
        this._f = f;
      }
      return this._f;
    }
    _edit(code, n, v) {
      if (this._ops === null) this._ops = [code, n, v];
      else if (this._ops !== false) this._ops.push(code, n, v);
      if (typeof this._f !== "number") applyEdit(this._f, code, n, v);
      return this;
    }
    // Replaces the whole list (tracked headers record it as clear + appends).
    _replace(list) {
      if (this._ops !== false) {
        const ops = [0, "", ""];
        for (let i = 0; i < list.length; i += 2) ops.push(2, list[i], list[i + 1]);
        this._ops = ops;
      }
      this._f = list;
    }
    // The edits that turn the starting list into this one (undefined: none).
    _edits() {
      if (this._ops !== false) return this._ops === null ? undefined : this._ops;
      const f = this._list();
      const ops = [0, "", ""];
      for (let i = 0; i < f.length; i += 2) ops.push(2, f[i], f[i + 1]);
      return ops;
    }
    get(name) {
      const n = String(name).toLowerCase();
      const f = this._list();
      let out = null;
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) out = out === null ? f[i + 1] : out + ", " + f[i + 1];
      return out;
    }
    getAll(name) {
      const n = String(name).toLowerCase();
      const f = this._list();
      const out = [];
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) out.push(f[i + 1]);
      return out;
    }
    has(name) {
      const n = String(name).toLowerCase();
      const f = this._list();
      for (let i = 0; i < f.length; i += 2) if (f[i] === n) return true;
      return false;
    }
    // The first set or append on tracked headers not read yet, the usual case, is recorded as
    // it was made, without a call, string conversion or lower-casing: names and values are
    // converted (and names lower-cased) when the list is loaded, and by the runtime and the
    // gateway when the hook returns. (`typeof` checks cost more here than the rest of `set`.)
    set(name, value) {
      if (this._ops === null && typeof this._f === "number") {
        this._ops = [1, name, value];
        return this;
      }
      return this._edit(1, String(name).toLowerCase(), String(value));
    }
    append(name, value) {
      if (this._ops === null && typeof this._f === "number") {
        this._ops = [2, name, value];
        return this;
      }
      return this._edit(2, String(name).toLowerCase(), String(value));
    }
    add(name, value) {
      return this.append(name, value);
    }
    delete(name) {
      return this._edit(3, String(name).toLowerCase(), "");
    }
    _pairs() {
      const f = this._list();
      const out = [];
      for (let i = 0; i < f.length; i += 2) out.push([f[i], f[i + 1]]);
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

  // Hook contexts are built lazily: each field of the call is fetched from the host side
  // (`N.field(seq, i)`) when a hook first reads it, and only what a hook changed goes back.
  // Field numbers: 0 namespace, 1 route, 2 service, 3 service URLs, 4 path parameters (flat),
  // 5 method, 6 uri, 7 remote address, 8 host, 9 proto, 10 the error's message.
  //
  // Each hook's context, the object it hands out (the request, the upstream response or the
  // response) and that object's headers are made once per instance and renewed for each call
  // when nothing else holds them (see `run`). They are sealed: a hook cannot add a property that
  // the next request would see. (Class bodies are strict code: renewing a field a hook made
  // read-only throws, and the runtime makes new objects instead.)

  // The client request. In requestModifier, method, path, query and headers may be changed,
  // and writeBody/writeJson replace the body sent upstream.
  class ModuleRequest {
    constructor(seq) {
      this._seq = seq;
      this._h = undefined;
      this._s = undefined;
    }
    // What a hook touched of the call's method, URI and body, made on first use (so a call
    // that touches none of it resets one field).
    _st() {
      let s = this._s;
      if (s === undefined) {
        s = {
          m: undefined,
          mset: false,
          path: undefined,
          rawQuery: "",
          origPath: undefined,
          query: undefined,
          queryDirty: false,
          body: undefined,
        };
        this._s = s;
      }
      return s;
    }
    get method() {
      const s = this._st();
      if (s.m === undefined) s.m = N.field(this._seq, 5);
      return s.m;
    }
    set method(v) {
      const s = this._st();
      s.m = v;
      s.mset = true;
    }
    _split(s) {
      const uri = N.field(this._seq, 6);
      const q = uri.indexOf("?");
      s.path = q < 0 ? uri : uri.slice(0, q);
      s.rawQuery = q < 0 ? "" : uri.slice(q + 1);
      s.origPath = s.path;
      return s;
    }
    get path() {
      const s = this._st();
      return (s.path === undefined ? this._split(s) : s).path;
    }
    set path(v) {
      const s = this._st();
      if (s.path === undefined) this._split(s);
      s.path = String(v);
    }
    get query() {
      const s = this._st();
      if (s.query === undefined) {
        if (s.path === undefined) this._split(s);
        s.query = new URLSearchParams(s.rawQuery);
        s.query._onChange = () => { s.queryDirty = true; };
      }
      return s.query;
    }
    set query(v) {
      const s = this._st();
      if (s.path === undefined) this._split(s);
      s.query = v instanceof URLSearchParams ? v : new URLSearchParams(v);
      s.queryDirty = true;
    }
    get headers() {
      if (this._h === undefined) this._h = Object.seal(Headers._tracked(this._seq, 0));
      return this._h;
    }
    set headers(v) {
      this.headers._replace((v instanceof Headers ? v : new Headers(v))._list().slice());
    }
    get host() { return N.field(this._seq, 8); }
    get remoteAddress() { return N.field(this._seq, 7); }
    get protocol() { return N.field(this._seq, 9); }
    get uri() {
      const path = this.path;
      const s = this._s;
      const q = s.queryDirty ? s.query.toString() : s.rawQuery;
      return path + (q ? "?" + q : "");
    }
    get url() { return this.protocol + "://" + this.host + this.uri; }
    readBody() {
      const s = this._st();
      if (s.body === undefined) s.body = N.requestBody(this._seq);
      return s.body;
    }
    readText() { return decoder.decode(this.readBody()); }
    readJson() { return parseJson(this.readBody(), "the request body"); }
    writeBody(body) {
      const s = this._st();
      s.body = toBytes(body);
      N.setRequestBody(this._seq, s.body);
      return this;
    }
    writeJson(value) {
      this.headers.set("content-type", "application/json");
      return this.writeBody(JSON.stringify(value));
    }
    // What changed, for the host: [invalid, method, uri, header edits], only what a hook touched.
    _outcome() {
      const edits = this._h === undefined ? undefined : this._h._edits();
      const s = this._s;
      if (s === undefined) return edits === undefined ? undefined : [undefined, undefined, undefined, edits];
      const method = s.mset ? String(s.m).toUpperCase() : undefined;
      const uri = s.queryDirty || (s.path !== undefined && s.path !== s.origPath) ? this.uri : undefined;
      return [undefined, method, uri, edits];
    }
  }

  // The upstream's response, in responseModifier.
  class UpstreamResponse {
    constructor(h) {
      this._seq = 0;
      this.statusCode = 200;
      this._h = h;
      this._body = undefined;
    }
    get status() { return this.statusCode; }
    set status(v) { this.statusCode = v; }
    get headers() { return this._h; }
    set headers(v) {
      this._h._replace((v instanceof Headers ? v : new Headers(v))._list().slice());
    }
    readBody() {
      if (this._body === undefined) this._body = N.responseBody(this._seq);
      return this._body;
    }
    readText() { return decoder.decode(this.readBody()); }
    readJson() { return parseJson(this.readBody(), "the upstream response body"); }
    writeBody(body) {
      this._body = toBytes(body);
      N.setResponseBody(this._seq, this._body);
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
    constructor(h) {
      this._seq = 0;
      this.statusCode = 200;
      this.headers = h;
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
        if (typeof body === "string") N.setResponseText(this._seq, body);
        else N.setResponseBody(this._seq, toBytes(body));
      }
      this.sent = true;
      return this;
    }
    json(value) {
      this.headers.set("content-type", "application/json");
      N.setResponseText(this._seq, JSON.stringify(value === undefined ? null : value) ?? "");
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
    constructor() {
      this._seq = 0;
      this._req = undefined;
      this._up = undefined;
      this._res = undefined;
    }
    request() {
      if (this._req === undefined) this._req = Object.seal(new ModuleRequest(this._seq));
      return this._req;
    }
    upstream() { return this._up; }
    response() { return this._res; }
    namespace() { return { name: N.field(this._seq, 0) }; }
    route() { return { name: N.field(this._seq, 1), namespace: N.field(this._seq, 0) }; }
    service() {
      const name = N.field(this._seq, 2);
      return name === undefined ? undefined : { name, urls: N.field(this._seq, 3) };
    }
    // Parameters come flat: [name, value, name, value, ...].
    pathParam(name) {
      const p = N.field(this._seq, 4);
      for (let i = 0; i < p.length; i += 2) if (p[i] === name) return p[i + 1];
      return null;
    }
    pathParams() {
      const o = {};
      const p = N.field(this._seq, 4);
      for (let i = 0; i < p.length; i += 2) o[p[i]] = p[i + 1];
      return o;
    }
    query() { return this.request().query; }
  }

  // Each hook's objects, [ctx, inner, headers], as `fresh` made them.
  const slots = [undefined, undefined, undefined, undefined, undefined];

  const fixed = (o, names) => {
    for (const name of names) Object.defineProperty(o, name, { writable: false });
  };

  // New objects for `hook`'s calls, linked and sealed. The runtime watches them too (`keep`)
  // and tells `run` whether anything but these links holds them. The links, and the context's
  // slots this hook does not use, are read-only, so `run` need not check or reset them; only a
  // response's `headers` may be replaced by a hook.
  function fresh(hook) {
    const h = Object.seal(Headers._tracked(0, -1));
    const ctx = new ModuleContext();
    let inner;
    if (hook <= 1) {
      inner = new ModuleRequest(0);
      inner._h = h;
      ctx._req = inner;
      fixed(inner, ["_h"]);
      fixed(ctx, ["_req", "_up", "_res"]);
    } else if (hook === 2) {
      inner = new UpstreamResponse(h);
      ctx._up = inner;
      fixed(inner, ["_h"]);
      fixed(ctx, ["_up", "_res"]);
    } else {
      inner = new ModuleResponse(h);
      ctx._res = inner;
      fixed(ctx, ["_up", "_res"]);
    }
    Object.seal(inner);
    Object.seal(ctx);
    keep(hook, ctx, inner, h);
    return (slots[hook] = [ctx, inner, h]);
  }

  const validStatus = (s) => Number.isInteger(s) && s >= 100 && s <= 599;

  // The outcome the runtime reads: an array whose first element says why the result is unusable
  // (undefined: a requestModifier that changed nothing), or, from `run`, an edit list (its first
  // element is a number) or undefined for a modifier that changed only headers or nothing.
  function outcome(hook, ctx, value) {
    switch (hook) {
      case 0: {
        const url = value instanceof URL ? value.href : value;
        if (typeof url !== "string" || !url) return ["fetchUpstream must return a URL string"];
        return [undefined, url];
      }
      case 1:
        return ctx._req === undefined ? undefined : ctx._req._outcome();
      case 2: {
        const up = ctx._up;
        if (!validStatus(up.statusCode)) return ["status " + up.statusCode + " is not an HTTP status"];
        return [undefined, up.statusCode, up._h._edits()];
      }
      default: {
        const res = ctx._res;
        if (!validStatus(res.statusCode)) return ["status " + res.statusCode + " is not an HTTP status"];
        if (!(res.headers instanceof Headers)) res.headers = new Headers(res.headers);
        return [undefined, res.statusCode, res.headers._edits()];
      }
    }
  }

  // The end of a hook call whose hook returned `result`: the outcome, or a promise of it. The
  // usual outcomes are written out: a requestModifier that changed only headers, or a
  // responseModifier that kept the status, leaves its edit list (undefined: no edits). The
  // runtime checks the same before it calls this for a hook that returned undefined.
  function finish(hook, ctx, inner, h, status, result) {
    if (result && typeof result.then === "function") return result.then((v) => outcome(hook, ctx, v));
    if (hook === 1 ? inner._s === undefined : hook === 2 && inner.statusCode === status) {
      const ops = h._ops;
      if (ops === null) return undefined;
      if (ops !== false) return ops;
    }
    return outcome(hook, ctx, result);
  }

  // Called once by the runtime with the module's hooks (by number: 0 fetchUpstream,
  // 1 requestModifier, 2 responseModifier, 3 errorHandler, 4 requestHandler). Makes each
  // defined hook's objects (so they are in the module's snapshot) and returns `[run, finish]`.
  // The runtime calls `run` for a hook call with the hook's number, the call's sequence
  // number, the upstream's (or the error's) status and whether the hook's objects from an
  // earlier call may be renewed (nothing else holds them); it returns the outcome, or a promise
  // of it. For every hook but errorHandler the runtime renews reusable objects itself, with the
  // same writes as `run`, calls the hook and then `finish`.
  globalThis.__dgate_install = function install(hooks) {
    delete globalThis.__dgate_install;
    for (let i = 0; i < 5; i++) if (hooks[i] !== undefined) fresh(i);
    return [function run(hook, seq, status, reusable) {
      // The hook's objects renewed in place for this call, or new ones when they may not be
      // reused, a hook replaced a response's headers, or made a field read-only (the write
      // throws). The runtime's `run_reused` makes the same writes: change both together.
      let objects = reusable ? slots[hook] : undefined;
      let ctx, inner, h;
      for (let made = false; ; objects = undefined) {
        if (objects === undefined) {
          if (made) throw new Error("dgate: new hook objects could not be set up");
          objects = fresh(hook);
          made = true;
        }
        ctx = objects[0];
        inner = objects[1];
        h = objects[2];
        try {
          ctx._seq = seq;
          inner._seq = seq;
          h._ops = null;
          if (hook <= 1) {
            inner._s = undefined;
            h._f = seq * 2;
          } else if (hook === 2) {
            ctx._req = undefined;
            inner.statusCode = status;
            inner._body = undefined;
            h._f = seq * 2 + 1;
          } else {
            if (inner.headers !== h) continue;
            ctx._req = undefined;
            inner.statusCode = 200;
            inner.sent = false;
            h._f = [];
          }
          break;
        } catch (_) {
          // Made read-only: new objects.
        }
      }
      const fn = hooks[hook];
      let result;
      if (hook === 2) {
        result = fn(ctx, inner);
      } else if (hook === 3) {
        const error = new Error(N.field(seq, 10));
        error.status = status;
        result = fn(ctx, error);
      } else {
        result = fn(ctx);
      }
      return finish(hook, ctx, inner, h, status, result);
    }, finish];
  };
})();
