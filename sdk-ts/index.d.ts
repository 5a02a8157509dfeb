// Types for dgate modules. A module exports any of the five hooks; the gateway calls them with a
// context object. Add this package to your tsconfig's "types" to get the `dgate` and `dgate/*`
// modules; the runtime's globals (fetch, console, Headers, URL, TextEncoder, crypto) are in
// "@dgate/sdk/globals", which the "@dgate/sdk/tsconfig" preset includes. Every name declared here
// starts with Dgate, so this file sits beside lib.dom or @types/node without a clash.
//
// The runtime is QuickJS (ES2023) in a WebAssembly sandbox: no DOM, no Node.js, no file system.
// `fetch`, documents and the cache are host calls; bodies are read only when asked for.

/** Header list: names are lower case, a name may repeat. */
declare class DgateHeaders implements Iterable<[string, string]> {
  constructor(init?: DgateHeaders | [string, string][] | Record<string, string>);
  /** All values of `name` joined with ", ", or null. */
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Replaces every value of `name`. */
  set(name: string, value: string | number): this;
  append(name: string, value: string | number): this;
  /** Same as append (DGate's name). */
  add(name: string, value: string | number): this;
  delete(name: string): this;
  forEach(fn: (value: string, name: string, headers: DgateHeaders) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
  toJSON(): Record<string, string>;
}

declare class DgateURLSearchParams implements Iterable<[string, string]> {
  constructor(init?: string | DgateURLSearchParams | [string, string][] | Record<string, string>);
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  set(name: string, value: string | number): void;
  append(name: string, value: string | number): void;
  delete(name: string): void;
  forEach(fn: (value: string, name: string, params: DgateURLSearchParams) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
  readonly size: number;
  toString(): string;
}

declare class DgateURL {
  constructor(url: string, base?: string | DgateURL);
  protocol: string;
  username: string;
  password: string;
  hostname: string;
  port: string;
  pathname: string;
  hash: string;
  search: string;
  readonly searchParams: DgateURLSearchParams;
  readonly host: string;
  readonly origin: string;
  readonly href: string;
  toString(): string;
  toJSON(): string;
}

type DgateBodyInit = string | Uint8Array | ArrayBuffer | object;

interface DgateFetchInit {
  method?: string;
  headers?: DgateHeaders | [string, string][] | Record<string, string>;
  body?: DgateBodyInit | null;
}

interface DgateFetchResponse {
  readonly status: number;
  readonly ok: boolean;
  /** The URL fetched. */
  readonly url: string;
  /** Always false: redirects come back as they are. */
  readonly redirected: boolean;
  readonly headers: DgateHeaders;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  bytes(): Promise<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

declare module "dgate" {
  export type Headers = DgateHeaders;
  export type URLSearchParams = DgateURLSearchParams;

  /** The client's request. In requestModifier, method, path, query and headers can be changed. */
  export interface ModuleRequest {
    method: string;
    /** The path without the query string. */
    path: string;
    query: DgateURLSearchParams;
    headers: DgateHeaders;
    readonly host: string;
    readonly remoteAddress: string;
    /** "http" or "https". */
    readonly protocol: string;
    /** The full URL as the client asked for it. */
    readonly url: string;
    /** Path and query. */
    readonly uri: string;
    readBody(): Uint8Array;
    readText(): string;
    readJson<T = unknown>(): T;
    /** Replaces the body sent upstream (requestModifier only). */
    writeBody(body: DgateBodyInit): this;
    writeJson(value: unknown): this;
  }

  /** The upstream's response, in responseModifier. */
  export interface UpstreamResponse {
    statusCode: number;
    /** Sets the status sent to the client (DGate's form); read it as `statusCode`. */
    status(code: number): this;
    headers: DgateHeaders;
    readBody(): Uint8Array;
    readText(): string;
    readJson<T = unknown>(): T;
    writeBody(body: DgateBodyInit): this;
    writeJson(value: unknown): this;
    /** Replaces the response with a 307 redirect to `url`. */
    redirect(url: string): this;
    /** Replaces the response with a 301 redirect to `url`. */
    redirectPermanent(url: string): this;
  }

  /** The response a requestHandler or errorHandler sends. Status defaults to 200. */
  export interface ModuleResponse {
    statusCode: number;
    headers: DgateHeaders;
    readonly sent: boolean;
    status(code: number): this;
    setHeader(name: string, value: string | number): this;
    /** A string (text/plain), bytes (application/octet-stream) or a value (JSON). */
    send(body?: DgateBodyInit): this;
    json(value: unknown): this;
    end(): this;
    /** Redirects with `code` (302 by default). */
    redirect(url: string, code?: number): this;
  }

  /**
   * A hook's context. It and the objects it hands out are sealed (adding a property throws) and
   * valid only during their call; keep per-request state in local variables.
   */
  export interface ModuleContext {
    request(): ModuleRequest;
    /** In responseModifier: the upstream's response. */
    upstream(): UpstreamResponse;
    /**
     * In requestHandler and errorHandler: the response to send. In the other hooks (DGate's
     * response writer) only its header changes count: `headers.set/append/add/delete` and
     * `setHeader` reach the response the client gets, after the upstream's and the hooks' own.
     */
    response(): ModuleResponse;
    namespace(): { name: string };
    route(): { name: string; namespace: string };
    /** The route's service and its upstream URLs; undefined on routes without one. */
    service(): { name: string; urls: string[] } | undefined;
    pathParam(name: string): string | null;
    pathParams(): Record<string, string>;
    query(): DgateURLSearchParams;
  }

  /** What errorHandler receives. */
  export interface UpstreamError extends Error {
    /** What dgate would answer without the handler (502, 504, ...). */
    status: number;
  }

  type MaybePromise<T> = T | Promise<T>;

  /** Picks the upstream for this request: a URL. */
  export type FetchUpstream = (ctx: ModuleContext) => MaybePromise<string | DgateURL>;
  export type RequestModifier = (ctx: ModuleContext) => MaybePromise<void>;
  export type ResponseModifier = (ctx: ModuleContext, res: UpstreamResponse) => MaybePromise<void>;
  export type ErrorHandler = (ctx: ModuleContext, error: UpstreamError) => MaybePromise<void>;
  export type RequestHandler = (ctx: ModuleContext) => MaybePromise<void>;

  export const log: (...args: unknown[]) => void;
  /** Waits: a number of seconds, or a duration such as "250ms" or "1.5s". */
  export function sleep(duration: number | string): void;
  export function asyncSleep(duration: number | string): Promise<void>;
  /** Fails the call with `message`. */
  export function fail(message: string): never;
  /** Calls `fn(attempt)` up to `times` times until it returns something truthy; that value. */
  export function retry<T>(times: number, fn: (attempt: number) => T): T;
  export * as crypto from "dgate/crypto";
  export * as http from "dgate/http";
  export * as state from "dgate/state";
  export * as storage from "dgate/storage";
  export * as util from "dgate/util";
  /** DGate's experimental submodule: empty. */
  export const x: Readonly<Record<string, never>>;
  export * from "dgate/crypto";
  export * from "dgate/state";
  export * from "dgate/storage";
  export * from "dgate/http";
  export * from "dgate/util";
}

declare module "dgate/util" {
  /** Replaces the upstream response's body with what `callback` makes of it as text. */
  export function readWriteBody(
    res: import("dgate").UpstreamResponse,
    callback: (body: string) => string,
  ): string;
}

declare module "dgate/http" {
  /** Outbound HTTP through the gateway (its timeout and per-call limit apply). */
  export function fetch(input: string | DgateURL, init?: DgateFetchInit): Promise<DgateFetchResponse>;
  export const Headers: typeof DgateHeaders;
  export const URL: typeof DgateURL;
  export const URLSearchParams: typeof DgateURLSearchParams;
}

declare module "dgate/crypto" {
  export type HashAlgorithm =
    | "md5" | "sha1" | "sha256" | "sha384" | "sha512" | "sha512_224" | "sha512_256"
    | "sha512-224" | "sha512-256";
  /** As DGate names them: base64url keeps its padding, base64rawurl drops it. */
  export type Encoding =
    | "hex" | "base64" | "base64url" | "base64rawurl" | "base64raw"
    | "b64" | "b64url" | "b64rawurl" | "b64raw";
  type Data = string | Uint8Array;

  export interface Hash {
    update(data: Data): this;
    digest(): Uint8Array;
    digest(encoding: Encoding): string;
  }
  export function createHash(algorithm: HashAlgorithm): Hash;
  export function createHmac(algorithm: HashAlgorithm, key: Data): Hash;
  export function sha1(data: Data): Uint8Array;
  export function sha1(data: Data, encoding: Encoding): string;
  export function sha256(data: Data): Uint8Array;
  export function sha256(data: Data, encoding: Encoding): string;
  export function sha512(data: Data): Uint8Array;
  export function sha512(data: Data, encoding: Encoding): string;
  export function md5(data: Data): Uint8Array;
  export function md5(data: Data, encoding: Encoding): string;
  export function sha384(data: Data): Uint8Array;
  export function sha384(data: Data, encoding: Encoding): string;
  export function sha512_224(data: Data): Uint8Array;
  export function sha512_224(data: Data, encoding: Encoding): string;
  export function sha512_256(data: Data): Uint8Array;
  export function sha512_256(data: Data, encoding: Encoding): string;
  export function getHashes(): string[];
  export function hexEncode(data: Data): string;
  /** An integer in [0, max), or in [min, max). */
  export function randomInt(max: number): number;
  export function randomInt(min: number, max: number): number;
  export function hmac(algorithm: HashAlgorithm, key: Data, data: Data): Uint8Array;
  export function hmac(algorithm: HashAlgorithm, key: Data, data: Data, encoding: Encoding): string;
  /** At most 65536 bytes. */
  export function randomBytes(length: number): Uint8Array;
  export function randomUUID(): string;
  export function toHex(data: Data): string;
  export function fromHex(text: string): Uint8Array;
  export function toBase64(data: Data): string;
  export function toBase64Url(data: Data): string;
  export function fromBase64(text: string): Uint8Array;
}

declare module "dgate/state" {
  /** A document of the module's namespace; `data` is parsed JSON. */
  export interface Document<T = unknown> {
    id: string;
    collection: string;
    data: T;
  }
  export function getDocument<T = unknown>(id: string, collection: string): Promise<Document<T> | undefined>;
  export function getDocuments<T = unknown>(options: {
    collection: string;
    limit?: number;
    offset?: number;
  }): Promise<Document<T>[]>;
  /** Creates or replaces; the data is checked against the collection's schema. */
  export function addDocument<T = unknown>(doc: Document<T>): Promise<Document<T>>;
  export function updateDocument<T = unknown>(doc: Document<T>): Promise<Document<T>>;
  /** Resolves to true when there was a document to delete. */
  export function deleteDocument(id: string, collection: string): Promise<boolean>;
  /** DGate's form: the document to delete. */
  export function deleteDocument(doc: { id: string; collection: string }): Promise<boolean>;
  /** A collection of the module's namespace, as the admin API shows it. */
  export interface Collection {
    name: string;
    namespace?: string;
    /** A JSON Schema its documents must satisfy. */
    schema?: unknown;
    visibility?: "public" | "private";
    type?: "document";
    tags?: string[];
  }
  export function getCollection(name: string): Promise<Collection | undefined>;
  /** Creates or replaces a collection of the module's namespace. */
  export function addCollection(collection: Collection): Promise<Collection>;
  /** Resolves to true when there was a collection to delete; one with documents is refused. */
  export function deleteCollection(name: string | { name: string }): Promise<boolean>;
}

declare module "dgate/storage" {
  /** A value stored with setCache, or undefined. */
  export function getCache<T = unknown>(key: string): T | undefined;
  /** Stores a JSON-serializable value; `ttl` is in seconds. */
  export function setCache(key: string, value: unknown, options?: { ttl?: number }): void;
  export function deleteCache(key: string): void;
}
