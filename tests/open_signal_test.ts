/**
 * app.broker({ signal }) / app.resultBackend({ signal }) joined by a second
 * caller while the open is under way: the starter's abort ends the
 * starter's wait and its open, not the joiner's (without a signal, or with
 * one that did not abort), which opens anew. (A signal aborted after the
 * open: worker_stop_while_connecting_test.ts.)
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "app.broker()/resultBackend() joined an open its starter aborts: the joiner opens anew",
  ignore: WITHOUT_REDIS,
}, async () => {
  const app = new Celery({ broker: REDIS_URL, backend: REDIS_URL });
  try {
    const starter = new AbortController();
    const reason = new Error("the starter gave up");
    const started = [
      app.broker({ signal: starter.signal }),
      app.resultBackend({ signal: starter.signal }),
    ]
      .map((p) => p.then(() => null, (e: unknown) => e));
    const joined = [app.broker(), app.resultBackend({ signal: AbortSignal.timeout(10_000) })]
      .map((p) => p.then((opened) => opened, (e: unknown) => e));
    starter.abort(reason);
    assert.deepEqual(await Promise.all(started), [reason, reason], "the starter's opens end");
    const [broker, backend] = await Promise.all(joined);
    assert.ok(!(broker instanceof Error), `the broker joiner failed: ${broker}`);
    assert.ok(!(backend instanceof Error), `the backend joiner failed: ${backend}`);
    assert.equal(await (await app.broker()).queueDepth(`open-signal-${crypto.randomUUID()}`), 0);
    assert.equal(await (await app.resultBackend()).get(crypto.randomUUID()), null);
  } finally {
    await app.close();
  }
});
