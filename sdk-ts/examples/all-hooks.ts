// Every hook once, as the README shows them (checked by the SDK's own type test).
import type { ModuleContext, UpstreamResponse, UpstreamError } from "dgate";

// Picks the upstream URL for this request, e.g. by client address.
export const fetchUpstream = (ctx: ModuleContext): string => {
  const urls = ctx.service()?.urls ?? [];
  const ip = ctx.request().remoteAddress;
  let h = 0;
  for (const c of ip) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return urls[h % urls.length];
};

// Changes the request before it goes upstream: method, path, query, headers, body.
export const requestModifier = (ctx: ModuleContext): void => {
  const req = ctx.request();
  req.headers.set("x-api-version", req.query.get("v") ?? "1");
  req.query.delete("v");
};

// Changes the upstream's response before the client gets it.
export const responseModifier = (ctx: ModuleContext, res: UpstreamResponse): void => {
  res.headers.set("cache-control", "no-store");
  if (res.statusCode === 404) res.writeJson({ error: "not here" });
};

// Answers instead of the gateway's own error when the upstream fails (502, 504, ...).
export const errorHandler = (ctx: ModuleContext, error: UpstreamError): void => {
  ctx.response().status(error.status).json({ error: "upstream unavailable", route: ctx.route().name });
};

// Answers the request itself: routes without a service.
export const requestHandler = async (ctx: ModuleContext): Promise<void> => {
  const id = ctx.pathParam("id");
  ctx.response().json({ id, at: Date.now() });
};
