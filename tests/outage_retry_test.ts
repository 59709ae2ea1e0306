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

Deno.test("retryWhileDown throws a broker error that trying again cannot mend at once", async () => {
  // A deleted KV file or a wrong Redis password was retried for the whole
  // outage limit (300 s), holding a worker's shutdown after it.
  let calls = 0;
  const gone = new BrokerConnectionError("kv:///tmp/x.sqlite", new Error("file deleted"), {
    transient: false,
  });
  await assert.rejects(
    retryWhileDown(() => {
      calls++;
      return Promise.reject(gone);
    }, { limit: 10 }),
    (err) => err === gone,
  );
  assert.equal(calls, 1);
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
