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

Deno.test("--leaked-threads-restart sets when the worker restarts for leaked threads; 0 is allowed", () => {
  assert.deepEqual(reliabilityOptions({ "leaked-threads-restart": "2" }), {
    leakedThreadsRestart: 2,
  });
  assert.deepEqual(reliabilityOptions({ "leaked-threads-restart": "0" }), {
    leakedThreadsRestart: 0,
  });
  assert.throws(
    () => reliabilityOptions({ "leaked-threads-restart": "1.5" }),
    /--leaked-threads-restart needs a whole number >= 0/,
  );
  assert.match(USAGE, /--leaked-threads-restart N/);
});
