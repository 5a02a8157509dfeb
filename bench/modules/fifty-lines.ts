// A 50-line TypeScript module, for timing `dgate build`: types, an enum, a class, async code.
import type { ModuleContext, UpstreamResponse } from "dgate";
import { sha256 } from "dgate/crypto";
import { getCache, setCache } from "dgate/storage";

enum Tier {
  Free = "free",
  Pro = "pro",
}

interface Quota {
  tier: Tier;
  limit: number;
}

class Limiter {
  constructor(private readonly quotas: Record<Tier, Quota>) {}

  quotaFor(key: string | null): Quota {
    return key && key.startsWith("pro_") ? this.quotas[Tier.Pro] : this.quotas[Tier.Free];
  }
}

const limiter = new Limiter({
  [Tier.Free]: { tier: Tier.Free, limit: 100 },
  [Tier.Pro]: { tier: Tier.Pro, limit: 10_000 },
});

export const requestModifier = async (ctx: ModuleContext): Promise<void> => {
  const req = ctx.request();
  const key = req.headers.get("x-api-key");
  const quota = limiter.quotaFor(key);
  const bucket = `quota:${sha256(key ?? req.remoteAddress, "hex").slice(0, 16)}`;
  const used = (getCache<number>(bucket) ?? 0) + 1;
  setCache(bucket, used, { ttl: 60 });
  req.headers.set("x-quota-tier", quota.tier);
  req.headers.set("x-quota-remaining", String(Math.max(0, quota.limit - used)));
};

export const responseModifier = (ctx: ModuleContext, res: UpstreamResponse): void => {
  const remaining = ctx.request().headers.get("x-quota-remaining");
  if (remaining !== null) {
    res.headers.set("x-ratelimit-remaining", remaining);
  }
  if (res.statusCode >= 500) {
    res.headers.set("retry-after", "5");
  }
};
