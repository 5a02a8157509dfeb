// fetchUpstream: an IP-hash load balancer. Each client address always goes to the same upstream
// of the route's service, so per-client state on the upstreams stays put.
import type { ModuleContext } from "dgate";
import { createHash } from "dgate/crypto";

export const fetchUpstream = (ctx: ModuleContext): string => {
  const urls = ctx.service()?.urls ?? [];
  if (urls.length === 0) {
    throw new Error("the route has no service with upstream URLs");
  }
  const digest = createHash("sha1").update(ctx.request().remoteAddress).digest();
  const bucket = ((digest[0] << 8) | digest[1]) % urls.length;
  return urls[bucket];
};
