// dgate/util: DGate's helpers.
// readWriteBody(res, callback): the upstream response's body as text, replaced by what
// `callback` returns; returns the new body.
export function readWriteBody(res, callback) {
  if (typeof callback !== "function") return "";
  const body = String(callback(res.readText()));
  res.writeBody(body);
  return body;
}
export default { readWriteBody };
