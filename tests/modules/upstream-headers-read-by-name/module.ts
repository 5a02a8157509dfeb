// responseModifier: reads the upstream's headers by name and says what it found.
import type { ModuleContext } from "dgate";

export const responseModifier = (ctx: ModuleContext): void => {
  const h = ctx.upstream().headers;
  h.set("x-type", `${h.get("Content-Type")}|${h.get("set-cookie")}|${h.has("x-absent")}`);
};
