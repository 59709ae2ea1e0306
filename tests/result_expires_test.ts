/**
 * Every result backend checks `resultExpires` when it opens: a negative
 * number, NaN or Infinity fails there with a RangeError naming the option
 * (not at the first store, nor by a silent default). A fraction is read
 * as Celery reads it for that backend: Redis truncates to whole seconds
 * (Celery's `int()`), rpc:// to whole milliseconds of `x-expires` (kombu's
 * `int(s * 1000)`, so under 1 ms is refused: RabbitMQ takes no `x-expires`
 * of 0), KV rounds up to whole milliseconds (Deno KV's `expireIn` takes
 * integers only).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { encodeResultMeta, openBackend } from "../protocol.ts";
import { rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const BAD = [-1, -0.5, NaN, Infinity];

const BACKENDS = [
  { name: "Redis", url: () => REDIS_URL, ignore: WITHOUT_REDIS },
  { name: "rpc://", url: () => RABBITMQ_URL.replace(/^amqp/, "rpc"), ignore: WITHOUT_RABBITMQ },
  { name: "KV", url: () => "kv://:memory:", ignore: false },
];

function namesTheOption(e: unknown, option = "resultExpires"): boolean {
  return e instanceof RangeError && e.message.startsWith(`${option} must be a finite number`);
}

for (const b of BACKENDS) {
  Deno.test({
    name:
      `${b.name} backend: a negative, NaN or infinite resultExpires fails at open with a RangeError`,
    ignore: b.ignore,
  }, async () => {
    for (const resultExpires of BAD) {
      await assert.rejects(
        openBackend(b.url(), { resultExpires }).then((backend) => backend.close()),
        namesTheOption,
        `resultExpires ${resultExpires}`,
      );
    }
  });
}

Deno.test("new Celery({ resultExpires }): a negative, NaN or infinite value throws a RangeError", () => {
  for (const resultExpires of BAD) {
    assert.throws(() => new Celery({ broker: "kv://:memory:", resultExpires }), namesTheOption);
  }
});

Deno.test({
  name: "Redis backend: result_expires in the URL is checked at open, naming it",
  ignore: WITHOUT_REDIS,
}, async () => {
  for (const v of ["-5", "soon", "Infinity"]) {
    await assert.rejects(
      openBackend(`${REDIS_URL}?result_expires=${v}`).then((backend) => backend.close()),
      (e) => namesTheOption(e, "result_expires"),
    );
  }
});

/** Store a SUCCESS meta for `taskId`. */
async function storeOne(backend: Awaited<ReturnType<typeof openBackend>>, taskId: string) {
  const meta = encodeResultMeta({ taskId, status: "SUCCESS", result: 1, dateDone: new Date() });
  await backend.store([{ taskId, status: "SUCCESS", meta }]);
}

Deno.test({
  name:
    "Redis backend: a fractional resultExpires is truncated to whole seconds, as Celery's int()",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("expires");
  const raw = await rawRedis();
  try {
    for (const [resultExpires, ttl] of [[2.9, 2], [0.5, -1]]) {
      const backend = await openBackend(`${REDIS_URL}?global_keyprefix=${prefix}`, {
        resultExpires,
      });
      const id = crypto.randomUUID();
      try {
        await storeOne(backend, id);
      } finally {
        await backend.close();
      }
      assert.equal(await raw.ttl(`${prefix}celery-task-meta-${id}`), ttl, `${resultExpires} s`);
    }
  } finally {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length) await raw.del(...keys);
    await raw.quit();
  }
});

Deno.test({
  name: "rpc:// backend: a resultExpires under 1 ms (x-expires 0) fails at open",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  await assert.rejects(
    openBackend(RABBITMQ_URL.replace(/^amqp/, "rpc"), { resultExpires: 0.0004 })
      .then((backend) => backend.close()),
    (e) => e instanceof RangeError && /resultExpires/.test(e.message) && /1 ms/.test(e.message),
  );
});

Deno.test("KV backend: a fractional resultExpires is rounded up to whole milliseconds", async () => {
  for (const resultExpires of [1.0005, 2.5]) {
    const backend = await openBackend("kv://:memory:", { resultExpires });
    try {
      const id = crypto.randomUUID();
      await storeOne(backend, id);
      assert.equal((await backend.get(id))?.status, "SUCCESS", `${resultExpires} s`);
    } finally {
      await backend.close();
    }
  }
  // Under 1 ms: rounded up it expires after 1 ms; rounded down it would be 0, kept forever.
  const backend = await openBackend("kv://:memory:", { resultExpires: 0.0004 });
  try {
    const id = crypto.randomUUID();
    await storeOne(backend, id);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(await backend.get(id), null, "0.0004 s is 1 ms, not 0 (forever)");
  } finally {
    await backend.close();
  }
});
