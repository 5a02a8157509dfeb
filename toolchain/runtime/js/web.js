// The web APIs a module sees, on top of the native functions: Headers, URL, URLSearchParams,
// console and fetch. Evaluated once, first, while the module is being built; hooks.js follows
// and takes the helpers it shares from `__dgate_shared`.
(() => {
  "use strict";
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
    // Tracked headers not loaded nor changed yet ask the host for the one header (the usual
    // read: a hook that reads a header or two does not take the whole list across). Undefined
    // when the list must answer: loaded, changed, or a name that is not ASCII (the host
    // lowercases ASCII only).
    _one(name) {
      if (this._ops !== null || typeof this._f !== "number") return undefined;
      const which = this._f % 2;
      return N.header((this._f - which) / 2, which, String(name));
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
      const one = this._one(name);
      if (one !== undefined) return one;
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
      const one = this._one(name);
      if (one !== undefined) return one !== null;
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
    constructor(r, url) {
      this.status = r.status;
      this.ok = r.status >= 200 && r.status < 300;
      this.url = url;
      // The host follows no redirects: a 3xx comes back as it is.
      this.redirected = false;
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
      return Promise.resolve(new FetchResponse(N.fetch(method, url, headers, body), url));
    } catch (e) {
      return Promise.reject(e);
    }
  };

  globalThis.Headers = Headers;
  globalThis.URL = URL;
  globalThis.URLSearchParams = URLSearchParams;

  globalThis.__dgate_shared = { toBytes, parseJson, decoder };
})();
