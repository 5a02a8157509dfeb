// dgate/crypto: digests, HMAC, random bytes and the encodings they are usually shown in.
const N = globalThis.__dgate_native;
const encoder = new TextEncoder();
const bytes = (data) => (typeof data === "string" ? encoder.encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data));

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
export function toBase64(data) {
  const b = bytes(data);
  let out = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < b.length ? B64[(n >> 6) & 63] : "=";
    out += i + 2 < b.length ? B64[n & 63] : "=";
  }
  return out;
}
export const toBase64Url = (data) => toBase64(data).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
export function fromBase64(text) {
  const s = String(text).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0, acc = 0, j = 0;
  for (const c of s) {
    const v = B64.indexOf(c);
    if (v < 0) throw new TypeError("not base64: " + JSON.stringify(c));
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 255;
    }
  }
  return out.subarray(0, j);
}
export const toHex = (data) => Array.from(bytes(data), (x) => x.toString(16).padStart(2, "0")).join("");
export function fromHex(text) {
  const s = String(text);
  if (s.length % 2 || /[^0-9a-fA-F]/.test(s)) throw new TypeError("not hex: " + JSON.stringify(s));
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

// Encodings as DGate names them: base64url keeps its padding, base64rawurl drops it.
function encode(b, encoding) {
  switch (encoding) {
    case undefined:
    case null:
    case "bytes":
      return b;
    case "hex":
      return toHex(b);
    case "base64":
    case "b64":
      return toBase64(b);
    case "base64url":
    case "b64url":
      return toBase64(b).replace(/\+/g, "-").replace(/\//g, "_");
    case "base64rawurl":
    case "b64rawurl":
      return toBase64Url(b);
    case "base64raw":
    case "b64raw":
      return toBase64(b).replace(/=+$/, "");
    default:
      throw new TypeError("unknown encoding " + JSON.stringify(encoding) + ": use hex, base64, base64url, base64raw, base64rawurl or bytes");
  }
}

// `sha512_224`, `SHA-512/224`... as the natives name them: lower case, no separators.
const algName = (alg) => String(alg).toLowerCase().replace(/[-_/]/g, "");
const HASHES = ["md5", "sha1", "sha256", "sha384", "sha512", "sha512-224", "sha512-256"];

class Hash {
  constructor(alg, key) {
    this._alg = algName(alg);
    this._key = key === undefined ? undefined : bytes(key);
    this._parts = [];
  }
  update(data) {
    this._parts.push(bytes(data));
    return this;
  }
  digest(encoding) {
    const total = this._parts.reduce((n, p) => n + p.length, 0);
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of this._parts) {
      all.set(p, at);
      at += p.length;
    }
    const out = this._key === undefined ? N.digest(this._alg, all) : N.hmac(this._alg, this._key, all);
    return encode(out, encoding);
  }
}

export const createHash = (alg) => new Hash(alg);
export const createHmac = (alg, key) => new Hash(alg, key);
const digestOf = (alg) => (data, encoding) => encode(N.digest(alg, bytes(data)), encoding);
export const md5 = digestOf("md5");
export const sha1 = digestOf("sha1");
export const sha256 = digestOf("sha256");
export const sha384 = digestOf("sha384");
export const sha512 = digestOf("sha512");
export const sha512_224 = digestOf("sha512224");
export const sha512_256 = digestOf("sha512256");
export const hmac = (alg, key, data, encoding) => encode(N.hmac(algName(alg), bytes(key), bytes(data)), encoding);
export const getHashes = () => HASHES.slice();
export const hexEncode = (data) => toHex(data);
// randomInt(max) in [0, max); randomInt(min, max) in [min, max).
export function randomInt(a, b) {
  const [min, max] = b === undefined ? [0, Math.trunc(a)] : [Math.trunc(a), Math.trunc(b)];
  if (!(max > min)) throw new RangeError("randomInt: max must be greater than min");
  const range = max - min;
  if (range > 2 ** 48) throw new RangeError("randomInt: the range must be at most 2^48");
  const r = N.randomBytes(7);
  let n = 0;
  for (let i = 0; i < 7; i++) n = n * 256 + r[i];
  // 56 random bits, reduced; the bias is below 2^-8 for the largest range allowed.
  return min + (n % range);
}
export const randomBytes = (n) => N.randomBytes(n);
export function randomUUID() {
  const b = N.randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
export default {
  createHash, createHmac, md5, sha1, sha256, sha384, sha512, sha512_224, sha512_256, hmac, getHashes, hexEncode,
  randomBytes, randomInt, randomUUID, toHex, fromHex, toBase64, toBase64Url, fromBase64,
};
