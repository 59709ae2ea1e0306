/**
 * A publish the broker could not take because it was unreachable is retried
 * as Celery's `task_publish_retry_policy` says (3 retries, 0 s then 0.2 s
 * apart, by default), so a `delay()` during a short restart of a single
 * Redis is not lost; once the retries are used up the error says so and
 * what to change. The server is the test's own redis-server.
 */

import assert from "node:assert/strict";
import { Celery, type CeleryOptions } from "../mod.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import {
  DEFAULT_PUBLISH_RETRY_POLICY,
  publishRetrying,
  publishRetryPolicyOf,
  resolvePublishRetryPolicy,
} from "../src/client/publish_retry.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const down = (transient = true) =>
  new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("connect ECONNREFUSED"), {
    transient,
  });

/** A publish that fails `times` times with `err`, recording when it was tried. */
function failing(times: number, err: () => Error): { fn: () => Promise<void>; at: number[] } {
  const at: number[] = [];
  const t0 = Date.now();
  return {
    at,
    fn: () => {
      at.push(Date.now() - t0);
      return at.length <= times ? Promise.reject(err()) : Promise.resolve();
    },
  };
}

/**
 * An app on a redis-server of the test's own that has sent one task (its
 * connection is up) before the server goes down; both closed after `fn`.
 */
async function withServerDown(
  options: Pick<CeleryOptions, "taskPublishRetryPolicy" | "defaultQueue">,
  fn: (app: Celery, server: PrivateRedis) => Promise<void>,
): Promise<void> {
  const server = await PrivateRedis.start();
  const app = new Celery({ broker: server.url, backend: null, ...options });
  try {
    await app.sendTask("t.add", [1, 1]);
    await server.down();
    await fn(app, server);
  } finally {
    await app.close();
    await server.close();
  }
}

Deno.test("publish retry: the default policy is Celery's", () => {
  assert.deepEqual(DEFAULT_PUBLISH_RETRY_POLICY, {
    maxRetries: 3,
    intervalStart: 0,
    intervalStep: 0.2,
    intervalMax: 0.2,
  });
  const app = new Celery({ broker: "kv://:memory:" });
  assert.equal(app.config.taskPublishRetry, true);
  assert.deepEqual(app.config.taskPublishRetryPolicy, DEFAULT_PUBLISH_RETRY_POLICY);
  assert.equal(resolvePublishRetryPolicy({ maxRetries: 10 }).intervalMax, 0.2);
  assert.throws(() => resolvePublishRetryPolicy({ intervalMax: -1 }), RangeError);
  assert.throws(() => resolvePublishRetryPolicy({ maxRetries: 1.5 }), RangeError);
});

Deno.test("publish retry: a call's retry and retryPolicy go over the app's, as apply_async's do", () => {
  const app = new Celery({
    broker: "kv://:memory:",
    taskPublishRetryPolicy: { maxRetries: 7, intervalMax: 1 },
  });
  assert.equal(publishRetryPolicyOf(app.config), app.config.taskPublishRetryPolicy);
  assert.equal(publishRetryPolicyOf(app.config, { retry: false }), null);
  assert.deepEqual(publishRetryPolicyOf(app.config, { retryPolicy: { maxRetries: 1 } }), {
    ...DEFAULT_PUBLISH_RETRY_POLICY,
    maxRetries: 1,
    intervalMax: 1,
  });
  const off = new Celery({ broker: "kv://:memory:", taskPublishRetry: false });
  assert.equal(publishRetryPolicyOf(off.config), null);
  assert.equal(
    publishRetryPolicyOf(off.config, { retry: true }),
    off.config.taskPublishRetryPolicy,
  );
  assert.throws(
    () => publishRetryPolicyOf(app.config, { retry: "no" as unknown as boolean }),
    /call option retry must be true or false; got string/,
  );
  // Celery's snake_case field names are refused, naming the one meant, not ignored.
  assert.throws(
    () => publishRetryPolicyOf(app.config, { retryPolicy: { max_retries: 1 } as never }),
    /retryPolicy has no field "max_retries" \(did you mean "maxRetries"\?\)/,
  );
  assert.throws(
    () => new Celery({ taskPublishRetryPolicy: { interval_max: 1 } as never }),
    /taskPublishRetryPolicy has no field "interval_max" \(did you mean "intervalMax"\?\)/,
  );
  assert.throws(
    () => publishRetryPolicyOf(app.config, { retryPolicy: { intervalStep: -1 } }),
    /retryPolicy\.intervalStep must be a number >= 0/,
  );
});

Deno.test("publish retry: an unreachable broker is tried again, 0 s then 0.2 s apart", async () => {
  const p = failing(3, down);
  await publishRetrying(p.fn, DEFAULT_PUBLISH_RETRY_POLICY);
  assert.equal(p.at.length, 4);
  const gaps = p.at.slice(1).map((t, i) => t - p.at[i]);
  // The first retry at once (a 0 ms timer, late under load), the others 0.2 s apart.
  assert.ok(gaps[0] < 180 && gaps[1] >= 190 && gaps[2] >= 190, `gaps ${gaps}`);
});

Deno.test("publish retry: used up, the error says how often and what to change", async () => {
  const p = failing(10, down);
  await assert.rejects(publishRetrying(p.fn, { ...DEFAULT_PUBLISH_RETRY_POLICY }), (err) => {
    assert.ok(err instanceof BrokerConnectionError);
    assert.match(err.message, /ECONNREFUSED; the publish was tried 4 time\(s\) over \d+\.\d s/);
    assert.match(err.message, /taskPublishRetryPolicy \(Celery's task_publish_retry_policy\)/);
    return true;
  });
  assert.equal(p.at.length, 4);
});

Deno.test("publish retry: used up, the error keeps the broker's own reason and hint", async () => {
  const refused = () =>
    new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("connect ECONNREFUSED"), {
      reason: "connection refused: nothing listens on 127.0.0.1:1",
      hint: "Start redis-server",
    });
  const p = failing(10, refused);
  await assert.rejects(
    publishRetrying(p.fn, { ...DEFAULT_PUBLISH_RETRY_POLICY, maxRetries: 1 }),
    (err) => {
      assert.ok(err instanceof BrokerConnectionError);
      // Before: the cause's bare message and a generic hint.
      assert.match(err.message, /nothing listens on 127\.0\.0\.1:1; the publish was tried 2 time/);
      assert.match(err.message, /Start redis-server; or let publishes ride out a longer outage/);
      return true;
    },
  );
});

Deno.test({
  name: "publish retry: app.close() ends a publish waiting to retry, saying so",
  ignore: WITHOUT_REDIS,
}, async () => {
  const policy = { maxRetries: 5, intervalStart: 60, intervalMax: 60 };
  await withServerDown({ taskPublishRetryPolicy: policy }, async (app) => {
    const sending = app.sendTask("t.add", [2, 2]);
    const failed = assert.rejects(sending, (err) => {
      assert.ok(err instanceof BrokerConnectionError, String(err));
      assert.match(
        err.message,
        /the publish was tried 1 time\(s\) over .* app\.close\(\) ended the wait/,
      );
      return true;
    });
    await new Promise((ok) => setTimeout(ok, 300));
    const t0 = Date.now();
    // Before: the delay() waited out its 60 s interval after the app closed.
    await app.close();
    await failed;
    assert.ok(Date.now() - t0 < 5000, `failed ${Date.now() - t0} ms after close()`);
  });
});

Deno.test("publish retry: other errors, a lasting refusal and taskPublishRetry false are not retried", async () => {
  for (
    const [err, policy] of [
      [() => new TypeError("bad"), DEFAULT_PUBLISH_RETRY_POLICY],
      [() => down(false), DEFAULT_PUBLISH_RETRY_POLICY],
      [() => down(), null],
    ] as const
  ) {
    const p = failing(1, err);
    await assert.rejects(publishRetrying(p.fn, policy));
    assert.equal(p.at.length, 1);
  }
});

Deno.test({
  name: "publish retry: a delay() while the app's redis-server restarts is sent once it is back",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withServerDown({
    defaultQueue: "restarting",
    // Room for the restart of a redis-server under a loaded CI (Celery's default allows 0.4 s).
    taskPublishRetryPolicy: { maxRetries: 50 },
  }, async (app, server) => {
    // Before: rejected at once with "connection ... is down; reconnecting".
    const sending = app.sendTask("t.add", [2, 2]);
    await server.up();
    await sending;
    const redis = await rawRedis(server.url);
    try {
      assert.equal(await redis.llen("restarting"), 2);
    } finally {
      await redis.quit();
    }
  });
});

Deno.test({
  name: "publish retry: a redis-server that stays down fails the delay() after the policy's tries",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withServerDown({ taskPublishRetryPolicy: { maxRetries: 2 } }, async (app) => {
    await assert.rejects(app.sendTask("t.add", [2, 2]), (err) => {
      assert.ok(err instanceof BrokerConnectionError, String(err));
      assert.match(err.message, /the publish was tried 3 time\(s\)/);
      return true;
    });
  });
});

Deno.test({
  name: "publish retry: a call's own retry options decide for that call while the server is down",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withServerDown({
    defaultQueue: "per-call",
    taskPublishRetryPolicy: { maxRetries: 0 },
  }, async (app, server) => {
    // retry: false fails at once with the broker's error, as Celery's apply_async(retry=False).
    await assert.rejects(
      app.sendTask("t.add", [1, 2], { retry: false }),
      (err) => err instanceof BrokerConnectionError && !/the publish was tried/.test(err.message),
    );
    // The app's policy (no retries) is overridden by the call's: the call outlives the restart.
    const sending = app.sendTask("t.add", [2, 2], { retryPolicy: { maxRetries: 50 } });
    await server.up();
    await sending;
    const redis = await rawRedis(server.url);
    try {
      assert.equal(await redis.llen("per-call"), 2);
    } finally {
      await redis.quit();
    }
  });
});

Deno.test({
  name: "publish retry: a sendMany() batch none of whose messages went out is tried again",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withServerDown(
    { defaultQueue: "batch", taskPublishRetryPolicy: { maxRetries: 50 } },
    async (app, server) => {
      // Before: rejected at once with the broker's error while the server restarted.
      const sending = app.sendMany([{ name: "t.add", args: [1, 2] }, {
        name: "t.add",
        args: [3, 4],
      }]);
      await server.up();
      assert.equal((await sending).length, 2);
      // The batch's signal still ends a wait between two tries, with its own reason.
      await server.down();
      const reason = new Error("no more waiting");
      const controller = new AbortController();
      const stopped = app.sendMany([{ name: "t.add", args: [5, 6] }], {
        signal: controller.signal,
      });
      await new Promise((ok) => setTimeout(ok, 300));
      controller.abort(reason);
      await assert.rejects(stopped, (err) => err === reason);
      // As with one call, the first call's retry: false sends the batch once.
      await assert.rejects(
        app.sendMany([{ name: "t.add", args: [7, 8], options: { retry: false } }]),
        (err) => err instanceof BrokerConnectionError && !/the publish was tried/.test(err.message),
      );
      await server.up();
      const redis = await rawRedis(server.url);
      try {
        assert.equal(await redis.llen("batch"), 3);
      } finally {
        await redis.quit();
      }
    },
  );
});
