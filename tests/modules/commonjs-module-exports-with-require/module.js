// A CommonJS module, as DGate runs them: require() of the built-ins, hooks on module.exports.
const { createHash } = require("dgate/crypto");

function requestModifier(ctx) {
  ctx.request().headers.set("x-cjs", createHash("sha256").update("a").digest("hex").slice(0, 8));
}

module.exports = { requestModifier };
exports = module.exports;
