// requestModifier: tags every request with an id and the client's country (from a header a CDN
// sets), and moves an API version from the query string into a header.
import type { ModuleContext } from "dgate";
import { randomUUID } from "dgate/crypto";

export const requestModifier = (ctx: ModuleContext): void => {
  const req = ctx.request();
  if (!req.headers.has("x-request-id")) {
    req.headers.set("x-request-id", randomUUID());
  }
  req.headers.set("x-client-country", req.headers.get("cf-ipcountry") ?? "unknown");
  const version = req.query.get("v");
  if (version !== null) {
    req.headers.set("x-api-version", version);
    req.query.delete("v");
  }
};
