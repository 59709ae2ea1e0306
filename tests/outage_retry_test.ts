import assert from "node:assert/strict";
import { BrokerConnectionError, retryWhileDown } from "../protocol.ts";

const down = () => new BrokerConnectionError("redis://:secret@h:6379/0", new Error("ECONNREFUSED"));

Deno.test("retryWhileDown retries while the server is unreachable, then returns", async () => {
  let calls = 0;
  const value = await retryWhileDown(() => {
    if (++calls < 4) return Promise.reject(down());
    return Promise.resolve("stored");
  }, { limit: 10, what: "test" });
  assert.equal(value, "stored");
  assert.equal(calls, 4);
});

Deno.test("retryWhileDown throws other errors at once, and the last one past its limit", async () => {
  let calls = 0;
  await assert.rejects(
    retryWhileDown(() => {
      calls++;
      return Promise.reject(new TypeError("bad command"));
    }),
    TypeError,
  );
  assert.equal(calls, 1);
  const t0 = Date.now();
  await assert.rejects(retryWhileDown(() => Promise.reject(down()), { limit: 0.5 }), (err) => {
    assert.ok(err instanceof BrokerConnectionError);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
  assert.ok(Date.now() - t0 < 2000);
});
