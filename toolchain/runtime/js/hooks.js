// The hooks' context objects (the request, the upstream response, the response a handler
// sends) and the `run`/`finish` pair the runtime calls. Evaluated once, after web.js, while the
// module is being built.
(() => {
  "use strict";
  const N = globalThis.__dgate_native;
  // Only the prelude may tell the runtime which objects to watch (see `fresh`).
  const keep = N.keep;
  delete N.keep;
  const { toBytes, parseJson, decoder } = globalThis.__dgate_shared;
  delete globalThis.__dgate_shared;

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
      this._m = undefined;
    }
    // What a hook changed or read of the call's URI and body, and whether it set the method,
    // made on first use (so a call that touches none of it resets one field). The method is
    // kept apart (`_m`): reading it, the most common read, would otherwise make this object
    // and send the call through `finish`'s slow path.
    _st() {
      let s = this._s;
      if (s === undefined) {
        s = {
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
      let m = this._m;
      if (m === undefined) m = this._m = N.field(this._seq, 5);
      return m;
    }
    set method(v) {
      this._st().mset = true;
      this._m = v;
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
      const method = s.mset ? String(this._m).toUpperCase() : undefined;
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
    // DGate's form: `status(code)` sets it and chains; `statusCode` reads it.
    status(code) {
      this.statusCode = code;
      return this;
    }
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
    redirect(url) {
      return this._redirect(url, 307);
    }
    redirectPermanent(url) {
      return this._redirect(url, 301);
    }
    _redirect(url, code) {
      this.headers.set("location", String(url));
      this.statusCode = code;
      return this.writeBody("");
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

  // ctx.response() outside the handlers, for the call in flight only (a new call makes a new
  // one; a kept one is refused by the host once its call is over). Each header change goes to
  // the host as it is made.
  class ClientHeaders {
    constructor(seq) {
      this._seq = seq;
      this._h = new Headers();
    }
    set(name, value) {
      N.clientHeader(this._seq, 1, String(name), String(value));
      this._h.set(name, value);
      return this;
    }
    append(name, value) {
      N.clientHeader(this._seq, 2, String(name), String(value));
      this._h.append(name, value);
      return this;
    }
    // Go's http.Header, which DGate's modules use, calls it add.
    add(name, value) { return this.append(name, value); }
    delete(name) {
      N.clientHeader(this._seq, 3, String(name), "");
      this._h.delete(name);
      return this;
    }
    del(name) { return this.delete(name); }
    get(name) { return this._h.get(name); }
    has(name) { return this._h.has(name); }
  }
  class ClientResponse {
    constructor(seq) {
      this._seq = seq;
      this.headers = new ClientHeaders(seq);
    }
    setHeader(name, value) {
      this.headers.set(name, value);
      return this;
    }
  }
  let clientResponse;

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
    // In requestHandler and errorHandler, the response to send. Elsewhere DGate's response
    // writer: changes to its headers reach the response the client gets.
    response() {
      if (this._res !== undefined) return this._res;
      if (clientResponse === undefined || clientResponse._seq !== this._seq) {
        clientResponse = new ClientResponse(this._seq);
      }
      return clientResponse;
    }
    namespace() { return { name: N.field(this._seq, 0) }; }
    route() { return { name: N.field(this._seq, 1), namespace: N.field(this._seq, 0) }; }
    service() {
      const name = N.field(this._seq, 2);
      return name === undefined ? undefined : { name, urls: N.field(this._seq, 3) };
    }
    // One parameter is looked up by the host; all of them come flat: [name, value, ...].
    pathParam(name) {
      return typeof name === "string" ? N.pathParam(this._seq, name) : null;
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
            inner._m = undefined;
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
