/**
 * Late-acknowledged messages whose `delivery_info` is odd (missing, null,
 * not strings) go back to the queue they were taken from when a crashed
 * consumer's messages are restored; one whose exchange routes to no queue
 * is parked. They used to be restored into lists nobody reads: `""`,
 * `table: 0x…` (Lua's text for a table) or the unroutable routing key. One
 * whose exchange routes to several queues goes to the first of them by name
 * (not SMEMBERS's order), with one warning per sweep counting such messages
 * and naming the queues (it moved without a word, then with one line each).
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { reset } from "@logtape/logtape";
import { bindingMember, bindingSet, PARKED_KEY, priorityList } from "../src/broker/redis_keys.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { pyJsonDumps, pyJsonLoads } from "../src/protocol/json.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import type { Redis } from "ioredis";
import { captureLogs, logLine } from "./helpers/logs.ts";

/**
 * Take `max` messages from `queues` with a broker of its own that then closes, as a consumer
 * that crashed with them unacknowledged, and make their unacked entries older than the
 * visibility timeout. The restoring broker never takes: a take starts the broker's own restore
 * sweep, which would race the test's (it ran beside the test's ZADDs and restored the first of
 * them, so the test's sweep returned 3 of 4, or 0 while it held `unacked_mutex`).
 */
async function crashedConsumer(
  url: string,
  redis: Redis,
  prefix: string,
  queues: string[],
  max: number,
): Promise<void> {
  const consumer = await openRedisBroker(url, { restoreInterval: 3600 });
  let got;
  try {
    got = await consumer.take(queues, { max, signal: AbortSignal.timeout(3000) });
  } finally {
    // Closing waits for its sweep; handed-out deliveries stay unacknowledged.
    await consumer.close();
  }
  assert.equal(got.length, max);
  for (const d of got) {
    await redis.zadd(prefix + "unacked_index", Date.now() / 1000 - 1000, d.deliveryTag);
  }
}

/** A kombu envelope of task `name` whose properties.delivery_info is `di`. */
function envelope(name: string, di: unknown, priority = 0): string {
  const m = message(name, { properties: { priority } });
  const env = pyJsonLoads(encodeEnvelope(m, { exchange: "", routing_key: "x" }, name)) as {
    properties: Record<string, unknown>;
  };
  env.properties.delivery_info = di;
  return pyJsonDumps(env);
}

Deno.test({
  name: "redis restore: odd delivery_info goes back to its queue; no route parks",
  ignore: WITHOUT_REDIS,
  async fn() {
    const prefix = uniquePrefix("restore-route");
    const url = `${REDIS_URL}?global_keyprefix=${prefix}&visibility_timeout=60`;
    const broker = await openRedisBroker(url, { restoreInterval: 3600 });
    const redis = await rawRedis();
    const q = uniqueQueue("restore-route");
    const other = uniqueQueue("restore-other");
    const nowhere = uniqueQueue("restore-nowhere");
    try {
      await broker.declareQueue(q);
      const lists: [string, string][] = [
        [q, envelope("unroutable", { exchange: "nosuch", routing_key: nowhere })],
        [q, envelope("other", { exchange: "", routing_key: other })],
        [q, envelope("empty", {})],
        [q, envelope("null", null)],
        [q, envelope("typed", { exchange: 5, routing_key: [1] })],
        [priorityList(q, 9), envelope("urgent", {}, 9)],
      ];
      for (const [list, raw] of lists) await redis.lpush(prefix + list, raw);
      await crashedConsumer(url, redis, prefix, [q], lists.length);
      assert.equal(await broker.restoreVisible(), 5);
      const names = async (list: string) =>
        (await redis.lrange(prefix + list, 0, -1)).map((raw) =>
          (pyJsonLoads(raw) as { properties: { delivery_tag: string } }).properties.delivery_tag
        ).sort();
      assert.deepEqual(await names(q), ["empty", "null", "typed"]);
      assert.deepEqual(await names(priorityList(q, 9)), ["urgent"]);
      assert.deepEqual(await names(other), ["other"], "an empty exchange routes by key, as kombu");
      assert.equal(await redis.exists(prefix + nowhere), 0);
      const parked = await redis.lrange(prefix + PARKED_KEY, 0, -1);
      assert.equal(parked.length, 1);
      assert.match(parked[0], /exchange \\"nosuch\\" routes routing key .* to no queue/);
      const stray = (await redis.keys(`${prefix}*`)).filter((k) =>
        /^table: |^$/.test(k.slice(prefix.length))
      );
      assert.deepEqual(stray, []);
      assert.equal(await redis.zcard(prefix + "unacked_index"), 0, "nothing left unacknowledged");
    } finally {
      await broker.close();
      await redis.quit();
      await deleteKeys(prefix);
    }
  },
});

Deno.test({
  name: "redis restore: messages routed to several queues go to the first by name, one warning",
  ignore: WITHOUT_REDIS,
  async fn() {
    const prefix = uniquePrefix("restore-fan");
    const records = await captureLogs("warning");
    const url = `${REDIS_URL}?global_keyprefix=${prefix}&visibility_timeout=60`;
    const broker = await openRedisBroker(url, { restoreInterval: 3600 });
    const redis = await rawRedis();
    const [a, b] = [uniqueQueue("restore-fan-a"), uniqueQueue("restore-fan-b")];
    try {
      for (const q of [a, b]) await redis.sadd(prefix + bindingSet("fan"), bindingMember("k", q));
      const fanned = ["fanned1", "fanned2", "fanned3"].map((name) =>
        envelope(name, { exchange: "fan", routing_key: "k" })
      );
      for (const raw of fanned) await redis.lpush(prefix + a, raw);
      await redis.lpush(prefix + b, envelope("alone", { exchange: "", routing_key: b }));
      await crashedConsumer(url, redis, prefix, [a, b], 4);
      assert.equal(await broker.restoreVisible(), 4);
      const [first, second] = [a, b].sort();
      const length = { [a]: 0, [b]: 0 };
      length[first] += 3; // the fanned ones, to the first by name
      length[b] += 1; // alone, to its own queue
      assert.equal(await redis.llen(prefix + first), length[first]);
      assert.equal(await redis.llen(prefix + second), length[second]);
      const lines = records.map(logLine).filter((l) => l.includes("unacknowledged task"));
      assert.equal(lines.length, 1, lines.join("\n"));
      const ids = fanned.map((raw) => (pyJsonLoads(raw) as { headers: { id: string } }).headers.id);
      // The sweep's order (the index's, by time) names one of them.
      const named = /^warning Restored 3 unacknowledged task\(s\) \(the first (\S+)\) /.exec(
        lines[0],
      );
      assert.ok(named && ids.includes(named[1]), lines[0]);
      assert.ok(
        lines[0].includes(
          `: 3 to ${first} of ${first}, ${second} (exchange "fan", routing key "k"). `,
        ),
        lines[0],
      );
    } finally {
      await broker.close();
      await redis.quit();
      await deleteKeys(prefix);
      await reset();
    }
  },
});
