// CommonJS may require only the built-ins.
const fs = require("fs");
exports.requestModifier = () => fs;
