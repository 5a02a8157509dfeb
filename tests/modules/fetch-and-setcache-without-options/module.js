// fetch(url) with no init and setCache(key, value) with no options, as DGate's modules call them.
import { getCache, setCache } from "dgate/storage";

export async function requestModifier(ctx) {
  const h = ctx.request().headers;
  setCache("geodata", { country: "NL" });
  h.set("x-cached", getCache("geodata").country);
  try {
    await fetch("http://127.0.0.1:9/unreachable");
  } catch (e) {
    h.set("x-fetch", e.message);
  }
}
