// dgate/storage: a cache shared by the modules of one namespace, in the gateway's memory.
// Values are stored as JSON; `ttl` is in seconds.
const N = globalThis.__dgate_native;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function getCache(key) {
  const b = N.cacheGet(String(key));
  return b === undefined ? undefined : JSON.parse(decoder.decode(b));
}
export function setCache(key, value, opts) {
  const ttl = opts && opts.ttl !== undefined ? Number(opts.ttl) * 1000 : undefined;
  N.cacheSet(String(key), encoder.encode(JSON.stringify(value === undefined ? null : value)), ttl);
}
export const deleteCache = (key) => N.cacheDelete(String(key));
export default { getCache, setCache, deleteCache };
