// The module: reads the method, sets a request header with a computed value, and sets a
// response header on the upstream's response. bench/run.sh measures it against nginx + njs
// doing the same two edits.
import type { ModuleContext } from "dgate";

export const requestModifier = (ctx: ModuleContext): void => {
  const req = ctx.request();
  req.headers.set("x-method", req.method.toLowerCase());
};

export const responseModifier = (ctx: ModuleContext): void => {
  ctx.upstream().headers.set("x-res", "1");
};
