// responseModifier + errorHandler: wraps the upstream's JSON in an envelope, and answers upstream
// failures with the same envelope instead of dgate's default error.
import type { ModuleContext, UpstreamError, UpstreamResponse } from "dgate";

interface Envelope {
  ok: boolean;
  status: number;
  route: string;
  data?: unknown;
  error?: string;
}

export const responseModifier = (ctx: ModuleContext, res: UpstreamResponse): void => {
  if (!(res.headers.get("content-type") ?? "").includes("application/json")) {
    return;
  }
  const envelope: Envelope = {
    ok: res.statusCode < 400,
    status: res.statusCode,
    route: ctx.route().name,
    data: res.readJson(),
  };
  res.headers.set("x-wrapped", "1");
  res.writeJson(envelope);
};

export const errorHandler = (ctx: ModuleContext, error: UpstreamError): void => {
  const envelope: Envelope = {
    ok: false,
    status: error.status,
    route: ctx.route().name,
    error: error.message,
  };
  ctx.response().status(error.status).json(envelope);
};
