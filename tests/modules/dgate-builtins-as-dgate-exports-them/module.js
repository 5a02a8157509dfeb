// DGate's `dgate` built-in: sleep, asyncSleep, retry, fail and the submodules by name, and the
// digests DGate's dgate/crypto has.
import { sleep, asyncSleep, retry, fail, crypto, state, util, storage, http } from "dgate";
import { md5, sha384, sha512_224, sha512_256, getHashes, hexEncode, randomInt, createHash } from "dgate/crypto";

export async function requestModifier(ctx) {
  const h = ctx.request().headers;
  const start = Date.now();
  sleep("30ms");
  await asyncSleep(0.03);
  h.set("x-slept", String(Date.now() - start >= 60));
  h.set("x-retry", String(retry(3, (i) => i === 2 && "third try")));
  try {
    fail("on purpose");
  } catch (e) {
    h.set("x-fail", e.message);
  }
  h.set("x-submodules", [crypto.createHash, state.getDocument, util.readWriteBody, storage.getCache, http.fetch].map((f) => typeof f).join(","));
  h.set("x-md5", md5("abc", "hex"));
  h.set("x-sha384", sha384("abc", "hex"));
  h.set("x-sha512-224", sha512_224("abc", "hex"));
  h.set("x-sha512-256", sha512_256("abc", "hex"));
  h.set("x-hashes", getHashes().join(","));
  h.set("x-hex", hexEncode("hi"));
  const n = randomInt(10, 12);
  h.set("x-random-int", String(n >= 10 && n < 12));
  h.set("x-base64url", createHash("sha1").update("a").digest("base64url"));
  h.set("x-base64rawurl", createHash("sha1").update("a").digest("base64rawurl"));
  h.set("x-hmac-md5", crypto.hmac("md5", "key", "data", "hex"));
}
