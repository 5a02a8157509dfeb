// DGate's IP-hash load balancer: fetchUpstream picks one of the service's URLs by a hash of the
// client's address, and says so in headers of the client's response through ctx.response().
import { createHash } from "dgate/crypto";

export const fetchUpstream = async (ctx: any) => {
  const remoteAddr = ctx.request().headers.get("X-Forwarded-For") || ctx.request().remoteAddress;
  const hash = createHash("sha1").update(remoteAddr).digest("hex");
  const hexHash = parseInt(hash.substr(0, 4), 16);
  const upstreamUrls = ctx.service()!.urls;
  ctx.response().headers.add("X-Hash", hexHash + " / " + upstreamUrls.length);
  ctx.response().headers.add("X-Remote-Address", remoteAddr);
  return upstreamUrls[hexHash % upstreamUrls.length];
};
