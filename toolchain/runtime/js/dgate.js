// dgate: everything in one import.
export * from "dgate/crypto";
export * from "dgate/state";
export * from "dgate/storage";
export * from "dgate/http";
export const log = (...args) => console.log(...args);
