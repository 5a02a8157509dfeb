// A module like real ones: reads a request header and a path parameter, tags the request sent
// upstream with both, and marks the response. bench/run.sh measures it against nginx + njs doing
// the same (a js_set variable and a header filter).
import type { ModuleContext } from "dgate";

export const requestModifier = (ctx: ModuleContext): void => {
  const req = ctx.request();
  const user = req.headers.get("x-user") ?? "anonymous";
  const id = ctx.pathParam("id") ?? "";
  req.headers.set("x-tag", `${user}:${id}`);
};

export const responseModifier = (ctx: ModuleContext): void => {
  ctx.upstream().headers.set("x-served-by", "dgate");
};
