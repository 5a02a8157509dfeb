// The dgate runtime's globals, for projects without lib.dom: the "@dgate/sdk/tsconfig" preset
// includes them (types: ["@dgate/sdk", "@dgate/sdk/globals"]). With lib.dom, leave this file out:
// the DOM's declarations of the same globals describe them well enough.
/// <reference path="./index.d.ts" />

declare var console: {
  debug(...args: unknown[]): void;
  trace(...args: unknown[]): void;
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};

/** Outbound HTTP through the gateway (its timeout and per-call limit apply). */
declare function fetch(input: string | DgateURL, init?: DgateFetchInit): Promise<DgateFetchResponse>;
declare var Headers: typeof DgateHeaders;
declare var URL: typeof DgateURL;
declare var URLSearchParams: typeof DgateURLSearchParams;

declare class TextEncoder {
  readonly encoding: string;
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  readonly encoding: string;
  decode(input?: Uint8Array | ArrayBuffer, options?: { stream?: boolean }): string;
}

/** The Web Crypto API's random functions (what npm packages such as uuid call). */
declare var crypto: {
  getRandomValues<T extends Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array>(array: T): T;
  randomUUID(): string;
};
