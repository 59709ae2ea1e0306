import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker, type RedisBroker } from "../src/broker/redis.ts";
import {
  defineScripts,
  type RedisScope,
  type ScriptedRedis,
} from "../src/broker/redis_commands.ts";
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

/** A new queue and `n` messages published to it and taken, each unacknowledged. */
async function takeNew(
  broker: RedisBroker,
  label: string,
  n: number,
): Promise<{ q: string; taken: Delivery[] }> {
  const q = uniqueQueue(label);
  await broker.publishMany(
    Array.from({ length: n }, (_, i) => ({ message: message(`p${i}`), target: { routingKey: q } })),
  );
  const taken: Delivery[] = [];
  while (taken.length < n) for (const d of await broker.take([q], { max: n })) taken.push(d);
  return { q, taken };
}

/** The message bodies of a parked list's entries. */
function parkedBodies(entries: readonly string[]): string[] {
  return entries.map((e) => JSON.parse(atob(JSON.parse(JSON.parse(e).message).body)));
}

/**
 * A scope on `client` whose script `name` goes through `wrap` (which gets
 * the real call), to fail or count the calls the broker code makes.
 */
function scopeWith(
  client: ScriptedRedis,
  url: string,
  prefix: string,
  name: "celeriacPark" | "celeriacUnpark",
  // deno-lint-ignore no-explicit-any
  wrap: (call: (...args: any[]) => Promise<number>) => (...args: any[]) => Promise<number>,
): RedisScope {
  const wrapped = new Proxy(client, {
    get(target, key) {
      if (key !== name) return Reflect.get(target, key);
      // deno-lint-ignore no-explicit-any
      return wrap((...args: any[]) => (target[name] as any)(...args));
    },
  });
  return { client: wrapped, rawUrl: url, db: 0, k: (key) => prefix + key, run: (fn) => fn() };
}

/** Reject every delivery through a settler on `scope`, as a worker settles a batch. */
async function rejectAll(
  scope: RedisScope,
  taken: readonly Delivery[],
  outageLimit = 10,
): Promise<void> {
  const taker = {
    settleable: () => null,
    handedOutEarly: () => false,
    ackedAtIntake: () => false,
  } as unknown as RedisTaker;
  await new RedisSettler(scope, taker, { outageLimit }).reject(
    taken.map((delivery) => ({ delivery, reason: "refused" })),
  );
}

Deno.test({
  name: "redis reject: after an outage part-way through, only the chunks Redis did not answer " +
    "are parked again (each message parked once)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("park-retry");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  try {
    const n = 2500; // three chunks of at most 1,000
    const { taken } = await takeNew(broker, "park-retry", n);
    // The second script call fails before it is sent, as when the connection drops.
    let calls = 0;
    await rejectAll(
      scopeWith(
        client,
        url,
        prefix,
        "celeriacPark",
        (call) => (...args) =>
          ++calls === 2
            ? Promise.reject(new BrokerConnectionError(url, new Error("connection lost")))
            : call(...args),
      ),
      taken,
    );
    assert.ok(calls > 2, "the failed call was retried");
    const parked = await client.lrange(`${prefix}${PARKED_KEY}`, 0, -1);
    assert.equal(parked.length, n);
    assert.equal(new Set(parkedBodies(parked)).size, n);
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
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  try {
    const n = 2500;
    const { q, taken } = await takeNew(broker, "unpark", n);
    await broker.reject(taken.map((delivery) => ({ delivery, reason: "refused" })));
    let calls = 0;
    const scope = scopeWith(client, url, prefix, "celeriacUnpark", (call) => (...args) => {
      calls++;
      return call(...args);
    });
    assert.equal(await requeueParked(scope, n), n);
    assert.equal(calls, 3);
    assert.equal(await client.llen(`${prefix}${PARKED_KEY}`), 0);
    const back: Delivery[] = [];
    while (back.length < n) for (const d of await broker.take([q], { max: n })) back.push(d);
    const texts = back.map((d) => JSON.parse(new TextDecoder().decode(d.body)));
    assert.deepEqual(texts, taken.map((_, i) => `p${i}`));
    assert.ok(back.every((d) => d.redelivered));
    await broker.ack(back);
  } finally {
    await broker.close();
    client.disconnect();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis reject: a park script that ran but whose reply was lost is not run again " +
    "when retried (each message parked once)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("park-lost-reply");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  try {
    const n = 2500; // three chunks of at most 1,000
    const { taken } = await takeNew(broker, "park-lost-reply", n);
    // The second script call runs on the server, and then its reply is lost with the connection.
    let calls = 0;
    await rejectAll(
      scopeWith(client, url, prefix, "celeriacPark", (call) => async (...args) => {
        const moved = await call(...args);
        if (++calls === 2) throw new BrokerConnectionError(url, new Error("connection lost"));
        return moved;
      }),
      taken,
    );
    assert.ok(calls > 3, "the call whose reply was lost was made again");
    const parked = await client.lrange(`${prefix}${PARKED_KEY}`, 0, -1);
    assert.equal(parked.length, n);
    assert.equal(new Set(parkedBodies(parked)).size, n);
    assert.equal(await client.hlen(`${prefix}unacked`), 0);
  } finally {
    await broker.close();
    client.disconnect();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis reject: the park record outlives the outage retry window (outageRetryLimit " +
    "above an hour): a retry after a lost reply still finds it",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("park-record-ttl");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  const limit = 7200;
  try {
    const { taken } = await takeNew(broker, "park-record-ttl", 3);
    // The first call runs on the server and its reply is lost; the record's TTL is read then.
    let calls = 0;
    let ttl = 0;
    await rejectAll(
      scopeWith(client, url, prefix, "celeriacPark", (call) => async (...args) => {
        const moved = await call(...args);
        if (++calls > 1) return moved;
        ttl = await client.ttl(String(args[3]));
        throw new BrokerConnectionError(url, new Error("connection lost"));
      }),
      taken,
      limit,
    );
    assert.equal(calls, 2, "the call whose reply was lost was made again");
    assert.ok(ttl > limit, `the park record lives ${ttl} s, the settler retries for ${limit} s`);
    assert.equal((await client.lrange(`${prefix}${PARKED_KEY}`, 0, -1)).length, 3);
  } finally {
    await broker.close();
    client.disconnect();
    await deleteKeys(prefix);
  }
});
