// The upstream response as DGate's modules use it: status(code) chains, statusCode reads it,
// readJson/writeJson rewrite the body.
import type { ModuleContext, UpstreamResponse } from "dgate";

export const responseModifier = async (ctx: ModuleContext, res: UpstreamResponse): Promise<void> => {
  const results: any = await ctx.upstream().readJson();
  results.seen = res.statusCode;
  res.status(200).writeJson(results);
};
