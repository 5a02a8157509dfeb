// node check.mjs FILE: exit 0 when FILE is a valid OpenAPI 3.x document, else print why and exit 1.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: node check.mjs openapi.json");
  process.exit(2);
}
const validator = new Validator();
const result = await validator.validate(JSON.parse(readFileSync(file, "utf8")));
if (!result.valid) {
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
console.log(`valid OpenAPI ${validator.version}`);
