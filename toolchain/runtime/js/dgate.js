// dgate: DGate's built-in module (fail, retry, sleep, asyncSleep and the submodules by name),
// and everything of the submodules in one import.
import * as crypto from "dgate/crypto";
import * as http from "dgate/http";
import * as state from "dgate/state";
import * as storage from "dgate/storage";
import * as util from "dgate/util";
export * from "dgate/crypto";
export * from "dgate/state";
export * from "dgate/storage";
export * from "dgate/http";
export * from "dgate/util";
export { crypto, http, state, storage, util };
// DGate's experimental submodule: nothing in it yet.
export const x = Object.freeze({});
export const log = (...args) => console.log(...args);

const N = globalThis.__dgate_native;

// Seconds as a number, or a Go duration string ("1.5s", "250ms", "1m30s").
function millis(value) {
  if (typeof value === "number") return value * 1000;
  if (typeof value === "string") {
    const units = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
    const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0, at = 0, m;
    while ((m = re.exec(value)) !== null) {
      total += Number(m[1]) * units[m[2]];
      at = re.lastIndex;
    }
    if (at === value.length && at > 0) return total;
    if (value === "0") return 0;
    throw new TypeError("invalid duration " + JSON.stringify(value));
  }
  throw new TypeError("sleep() takes a number of seconds or a duration string");
}

// Waits (the whole call waits: modules run one call at a time), within the hook's time limit.
export function sleep(duration) {
  N.sleep(millis(duration));
}
export function asyncSleep(duration) {
  try {
    const ms = millis(duration);
    return Promise.resolve().then(() => N.sleep(ms));
  } catch (e) {
    return Promise.reject(e);
  }
}
// Fails the call with `message`.
export function fail(message) {
  throw new Error(String(message));
}
// Calls fn(attempt) up to `times` times, until it returns something truthy; returns that (or
// the last value).
export function retry(times, fn) {
  if (!(times > 0)) throw new RangeError("retry: the number of tries must be greater than 0");
  if (typeof fn !== "function") throw new TypeError("retry: the second argument must be a function");
  let v;
  for (let i = 0; i < times; i++) {
    v = fn(i);
    if (v) return v;
  }
  return v;
}
