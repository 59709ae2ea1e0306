import assert from "node:assert/strict";
import { reliabilityOptions } from "../src/cli/reliability.ts";
import { USAGE } from "../src/cli/options.ts";

Deno.test("--max-deliveries sets the poison limit; a bad value is refused", () => {
  assert.deepEqual(reliabilityOptions({}), {});
  assert.deepEqual(reliabilityOptions({ "max-deliveries": "3" }), { maxDeliveries: 3 });
  assert.deepEqual(reliabilityOptions({ "max-deliveries": "0" }), { maxDeliveries: 0 });
  assert.throws(() => reliabilityOptions({ "max-deliveries": "-1" }), /whole number >= 0/);
  assert.throws(() => reliabilityOptions({ "max-deliveries": "x" }), TypeError);
  assert.match(USAGE, /--max-deliveries N/);
});
