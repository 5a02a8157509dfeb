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

  // Header lists: arrays of [lower-case name, value]; a name may repeat.
  class Headers {
    constructor(init) {
      this._list = [];
      if (init instanceof Headers) init = init._list;
      if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    get(name) {
      const n = String(name).toLowerCase();
      const values = this._list.filter(([k]) => k === n).map(([, v]) => v);
      return values.length ? values.join(", ") : null;
    }
    getAll(name) {
      const n = String(name).toLowerCase();
      return this._list.filter(([k]) => k === n).map(([, v]) => v);
    }
    has(name) {
      const n = String(name).toLowerCase();
      return this._list.some(([k]) => k === n);
    }
    set(name, value) {
      const n = String(name).toLowerCase();
      this._list = this._list.filter(([k]) => k !== n);
      this._list.push([n, String(value)]);
      return this;
    }
    append(name, value) {
      this._list.push([String(name).toLowerCase(), String(value)]);
      return this;
    }
    add(name, value) {
      return this.append(name, value);
    }
    delete(name) {
      const n = String(name).toLowerCase();
      this._list = this._list.filter(([k]) => k !== n);
      return this;
    }
    forEach(fn, self) {
      for (const [k, v] of this._list) fn.call(self, v, k, this);
    }
    keys() { return this._list.map(([k]) => k)[Symbol.iterator](); }
    values() { return this._list.map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toJSON() {
      const o = {};
      for (const [k, v] of this._list) o[k] = o[k] === undefined ? v : o[k] + ", " + v;
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
      this.headers = new Headers(r.headers);
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
      const headers = new Headers(init.headers)._list;
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

  const splitUri = (uri) => {
    const q = uri.indexOf("?");
    return q < 0 ? [uri, ""] : [uri.slice(0, q), uri.slice(q + 1)];
  };

  // The client request. In requestModifier, method, path, query and headers may be changed,
  // and writeBody/writeJson replace the body sent upstream.
  function makeRequest(rec) {
    const [path, query] = splitUri(rec.uri);
    let bodyCache;
    const req = {
      method: rec.method,
      path,
      query: new URLSearchParams(query),
      headers: new Headers(rec.headers),
      host: rec.host,
      remoteAddress: rec.remoteAddress,
      protocol: rec.proto,
      get url() { return rec.proto + "://" + rec.host + req.uri; },
      get uri() {
        const q = req.query.toString();
        return req.path + (q ? "?" + q : "");
      },
      readBody() {
        if (bodyCache === undefined) bodyCache = N.requestBody();
        return bodyCache;
      },
      readText() { return decoder.decode(req.readBody()); },
      readJson() { return parseJson(req.readBody(), "the request body"); },
      writeBody(body) {
        bodyCache = toBytes(body);
        N.setRequestBody(bodyCache);
        return req;
      },
      writeJson(value) {
        req.headers.set("content-type", "application/json");
        return req.writeBody(JSON.stringify(value));
      },
    };
    // Unchanged, the original query string is kept byte for byte.
    req.query._original = query;
    return req;
  }

  function requestOutcome(req) {
    const q = req.query.toString();
    const query = q === new URLSearchParams(req.query._original).toString() ? req.query._original : q;
    return {
      method: String(req.method).toUpperCase(),
      uri: req.path + (query ? "?" + query : ""),
      headers: req.headers._list,
    };
  }

  // The upstream's response, in responseModifier.
  function makeUpstream(rec) {
    let bodyCache;
    const up = {
      statusCode: rec.status,
      get status() { return up.statusCode; },
      set status(v) { up.statusCode = v; },
      headers: new Headers(rec.headers),
      readBody() {
        if (bodyCache === undefined) bodyCache = N.responseBody();
        return bodyCache;
      },
      readText() { return decoder.decode(up.readBody()); },
      readJson() { return parseJson(up.readBody(), "the upstream response body"); },
      writeBody(body) {
        bodyCache = toBytes(body);
        N.setResponseBody(bodyCache);
        up.headers.delete("content-length");
        return up;
      },
      writeJson(value) {
        up.headers.set("content-type", "application/json");
        return up.writeBody(JSON.stringify(value));
      },
    };
    return up;
  }

  // The response a requestHandler or errorHandler sends.
  function makeResponse() {
    const res = {
      statusCode: 200,
      headers: new Headers(),
      sent: false,
      status(code) {
        res.statusCode = code;
        return res;
      },
      setHeader(name, value) {
        res.headers.set(name, value);
        return res;
      },
      send(body) {
        if (body !== undefined && body !== null) {
          if (!res.headers.has("content-type")) {
            res.headers.set(
              "content-type",
              typeof body === "string" ? "text/plain; charset=utf-8"
                : body instanceof Uint8Array || body instanceof ArrayBuffer ? "application/octet-stream"
                : "application/json",
            );
          }
          N.setResponseBody(toBytes(body));
        }
        res.sent = true;
        return res;
      },
      json(value) {
        res.headers.set("content-type", "application/json");
        N.setResponseBody(encoder.encode(JSON.stringify(value === undefined ? null : value)));
        res.sent = true;
        return res;
      },
      end() {
        res.sent = true;
        return res;
      },
      redirect(url, code) {
        res.statusCode = code || 302;
        res.headers.set("location", String(url));
        res.sent = true;
        return res;
      },
    };
    return res;
  }

  function makeContext(rec, req, up, res) {
    const params = {};
    for (const [k, v] of rec.params) params[k] = v;
    const route = { name: rec.route, namespace: rec.namespace };
    return {
      request: () => req,
      upstream: () => up,
      response: () => res,
      namespace: () => ({ name: rec.namespace }),
      route: () => route,
      service: () =>
        rec.service === undefined || rec.service === null ? undefined : { name: rec.service, urls: rec.serviceUrls.slice() },
      pathParam: (name) => (Object.prototype.hasOwnProperty.call(params, name) ? params[name] : null),
      pathParams: () => Object.assign({}, params),
      query: () => req.query,
    };
  }

  const validStatus = (s) => Number.isInteger(s) && s >= 100 && s <= 599;

  // Called by the runtime for each hook call; returns the outcome (or a promise of it).
  globalThis.__dgate_run = function run(hook, ctxRec, reqRec, resRec, errRec) {
    const fn = globalThis.__dgate_hooks[hook];
    const req = makeRequest(reqRec);
    const up = resRec ? makeUpstream(resRec) : undefined;
    const res = hook === "requestHandler" || hook === "errorHandler" ? makeResponse() : undefined;
    const ctx = makeContext(ctxRec, req, up, res);
    let result;
    if (hook === "responseModifier") result = fn(ctx, up);
    else if (hook === "errorHandler") {
      const error = new Error(errRec.message);
      error.status = errRec.status;
      result = fn(ctx, error);
    } else result = fn(ctx);
    const finish = (value) => {
      switch (hook) {
        case "fetchUpstream": {
          const url = value instanceof URL ? value.href : value;
          if (typeof url !== "string" || !url) return { invalid: "fetchUpstream must return a URL string" };
          return { url };
        }
        case "requestModifier":
          return requestOutcome(req);
        case "responseModifier":
          if (!validStatus(up.statusCode)) return { invalid: "status " + up.statusCode + " is not an HTTP status" };
          return { status: up.statusCode, headers: up.headers._list };
        default:
          if (!validStatus(res.statusCode)) return { invalid: "status " + res.statusCode + " is not an HTTP status" };
          return { status: res.statusCode, headers: res.headers._list };
      }
    };
    if (result && typeof result.then === "function") return result.then(finish);
    return finish(result);
  };
})();
