// CommonJS may require the built-ins and what dgate build resolves (files, packages); a
// Node.js module is refused at build time, pointing at the require.
const fs = require("fs");
exports.requestModifier = () => fs;
