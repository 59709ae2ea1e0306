import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { defineScripts, type RedisScope } from "../src/broker/redis_commands.ts";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { envelopeOfUnacked, requeueParked } from "../src/broker/redis_parked.ts";
import { RedisSettler } from "../src/broker/redis_settle.ts";
import type { RedisTaker } from "../src/broker/redis_take.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

// The `unacked` hash holds kombu's `[envelope, exchange, routing_key]` as Python's json.dumps writes it.
Deno.test("envelopeOfUnacked: the envelope text, character for character, from kombu's layout", () => {
  const envelope =
    '{"body": "e30=", "headers": {"task": "t\\u00e9", "argsrepr": "(\\"a\\\\\\", \\"b\\")"}}';
  assert.equal(envelopeOfUnacked(`[${envelope}, "", "celery"]`), envelope);
  assert.equal(envelopeOfUnacked(`[${envelope}, "ex\\"change", "route\\\\"]`), envelope);
  assert.equal(envelopeOfUnacked(`[${envelope}, "é", "\\", \\""]`), envelope);
});

Deno.test("envelopeOfUnacked: null for what is not that layout (the caller re-encodes the message)", () => {
  for (
    const entry of [
      "not an entry",
      '[{"body": "e30="},"","celery"]', // compact separators
      '[{"body": "e30="}, null, "celery"]',
      '[, "", ""]',
      '["", ""]',
      '[{"body": "e30="}, "", "celery\\"]',
      "[]",
    ]
  ) {
    assert.equal(envelopeOfUnacked(entry), null, entry);
  }
});

Deno.test({
  name: "redis reject: after an outage part-way through, only the chunks Redis did not answer " +
    "are parked again (each message parked once)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("park-retry");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const client = defineScripts(new Redis(REDIS_URL));
  try {
    const q = uniqueQueue("park-retry");
    const n = 2500; // three chunks of at most 1,000
    await broker.publishMany(
      Array.from(
        { length: n },
        (_, i) => ({ message: message(`p${i}`), target: { routingKey: q } }),
      ),
    );
    const taken: Delivery[] = [];
    while (taken.length < n) for (const d of await broker.take([q], { max: n })) taken.push(d);
    // The second script call fails before it is sent, as when the connection drops.
    let calls = 0;
    const flaky = new Proxy(client, {
      get(target, key) {
        if (key !== "celeriacPark") return Reflect.get(target, key);
        return (...args: string[]) =>
          ++calls === 2
            ? Promise.reject(new BrokerConnectionError(url, new Error("connection lost")))
            : target.celeriacPark(...args);
      },
    });
    const scope: RedisScope = {
      client: flaky,
      rawUrl: url,
      db: 0,
      k: (key) => prefix + key,
      run: (fn) => fn(),
    };
    const taker = { settleable: () => null, handedOutEarly: () => false } as unknown as RedisTaker;
    await new RedisSettler(scope, taker, 10).reject(
      taken.map((delivery) => ({ delivery, reason: "refused" })),
    );
    assert.ok(calls > 2, "the failed call was retried");
    const parked = await client.lrange(`${prefix}${PARKED_KEY}`, 0, -1);
    const texts = parked.map((e) => JSON.parse(atob(JSON.parse(JSON.parse(e).message).body)));
    assert.equal(parked.length, n);
    assert.equal(new Set(texts).size, n);
    assert.equal(await client.hlen(`${prefix}unacked`), 0);
    assert.equal(await client.zcard(`${prefix}unacked_index`), 0);
  } finally {
    await broker.close();
    client.disconnect();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis requeueParked: 2,500 parked messages go back in three script calls, oldest first, " +
    "each once and marked redelivered",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("unpark");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const client = defineScripts(new Redis(REDIS_URL));
  try {
    const q = uniqueQueue("unpark");
    const n = 2500;
    await broker.publishMany(
      Array.from(
        { length: n },
        (_, i) => ({ message: message(`u${i}`), target: { routingKey: q } }),
      ),
    );
    const taken: Delivery[] = [];
    while (taken.length < n) for (const d of await broker.take([q], { max: n })) taken.push(d);
    await broker.reject(taken.map((delivery) => ({ delivery, reason: "refused" })));
    let calls = 0;
    const counted = new Proxy(client, {
      get(target, key) {
        if (key !== "celeriacUnpark") return Reflect.get(target, key);
        return (...args: [number, ...string[]]) => {
          calls++;
          return target.celeriacUnpark(...args);
        };
      },
    });
    const scope: RedisScope = {
      client: counted,
      rawUrl: url,
      db: 0,
      k: (key) => prefix + key,
      run: (fn) => fn(),
    };
    assert.equal(await requeueParked(scope, n), n);
    assert.equal(calls, 3);
    assert.equal(await client.llen(`${prefix}${PARKED_KEY}`), 0);
    const back: Delivery[] = [];
    while (back.length < n) for (const d of await broker.take([q], { max: n })) back.push(d);
    const texts = back.map((d) => JSON.parse(new TextDecoder().decode(d.body)));
    assert.deepEqual(texts, taken.map((_, i) => `u${i}`));
    assert.ok(back.every((d) => d.redelivered));
    await broker.ack(back);
  } finally {
    await broker.close();
    client.disconnect();
    await deleteKeys(prefix);
  }
});
