// requestModifier: reads single headers and path parameters by name (any case, several values,
// absent ones), then reads again after changing the headers.
import type { ModuleContext } from "dgate";

export const requestModifier = (ctx: ModuleContext): void => {
  const h = ctx.request().headers;
  const seen = [
    h.get("X-User"),
    h.get("accept"),
    h.get("x-missing"),
    h.has("ACCEPT"),
    h.has("x-none"),
    // The Kelvin sign lowercases to an ASCII "k".
    h.get("\u212A-key"),
    ctx.pathParam("id"),
    ctx.pathParam("nope"),
  ];
  h.set("x-seen", seen.map(String).join("|"));
  // Reads after a change see it.
  h.append("accept", "text/plain");
  h.set("x-after", h.get("Accept") ?? "none");
};
