// The benchmark's request modifier: sets one header.
import type { ModuleContext } from "dgate";

export const requestModifier = (ctx: ModuleContext): void => {
  ctx.request().headers.set("x-bench", "1");
};
