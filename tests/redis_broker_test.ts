import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { brokerConformance, message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { BIG, MOST_ARGUMENTS, watchCommandSizes } from "./helpers/big_batches.ts";
import { command, privateServers } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("broker");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

brokerConformance("redis", (o) => openRedisBroker(url, o), WITHOUT_REDIS);

Deno.test({
  name: "redis broker: a published message is the kombu envelope in the priority list",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("wire");
    await broker.publish(message("x", { properties: { priority: 5 } }), { routingKey: q });
    assert.equal(await r.llen(`${prefix}${q}\x06\x163`), 1);
    const raw = (await r.lrange(`${prefix}${q}\x06\x163`, 0, 0))[0];
    const env = JSON.parse(raw);
    assert.deepEqual(Object.keys(env), [
      "body",
      "content-encoding",
      "content-type",
      "headers",
      "properties",
    ]);
    assert.deepEqual(Object.keys(env.properties), [
      "delivery_mode",
      "delivery_info",
      "priority",
      "body_encoding",
      "delivery_tag",
    ]);
    assert.deepEqual(env.properties.delivery_info, { exchange: "", routing_key: q });
    assert.equal(env.properties.body_encoding, "base64");
    assert.deepEqual(
      await r.smembers(`${prefix}_kombu.binding.${q}`),
      [`${q}\x06\x16\x06\x16${q}`],
    );
    assert.equal(await broker.purge(q), 1);
  } finally {
    await broker.close();
    await r.quit();
  }
});

/**
 * Run `fn` with a broker on a private Redis (its port given too) whose
 * commands are watched; `fn` calls the third argument once the commands to
 * check are sent: none of them may carry more than {@link MOST_ARGUMENTS}.
 */
async function watchedBroker(
  fn: (
    broker: Awaited<ReturnType<typeof openRedisBroker>>,
    port: number,
    checkSizes: () => Promise<void>,
  ) => Promise<void>,
): Promise<void> {
  const servers = await privateServers("broker-big", (s) => s.redis(0));
  try {
    const broker = await openRedisBroker(`redis://127.0.0.1:${servers.base}/0`);
    try {
      const sizes = await watchCommandSizes([servers.base]);
      let checked = false;
      await fn(broker, servers.base, async () => {
        checked = true;
        const largest = await sizes.largest();
        assert.ok(
          largest.args <= MOST_ARGUMENTS,
          `a command too large: ${JSON.stringify(largest)}`,
        );
      });
      assert.ok(checked, "the command sizes were checked");
    } finally {
      await broker.close();
    }
  } finally {
    await servers.stop();
  }
}

Deno.test({
  name: `redis broker: publishMany of ${BIG} messages to one queue pushes them all, in order, ` +
    "in commands of at most 1,000",
  ignore: WITHOUT_REDIS,
}, async () => {
  await watchedBroker(async (broker, port, checkSizes) => {
    const q = uniqueQueue("big-batch");
    await broker.publishMany(
      Array.from(
        { length: BIG },
        (_, i) => ({ message: message(`m${i}`), target: { routingKey: q } }),
      ),
    );
    await checkSizes();
    assert.equal(await command(port, "LLEN", q), BIG);
    // LPUSH puts the last pushed at the head; the worker pops from the tail: the first published.
    const first = JSON.parse(await command(port, "LINDEX", q, -1) as string);
    assert.equal(atob(first.body), JSON.stringify("m0"));
    assert.equal(await broker.purge(q), BIG);
  });
});

Deno.test({
  name: `redis broker: extend() renews the leases of ${BIG} deliveries in one call, ` +
    "in commands of at most 1,000",
  ignore: WITHOUT_REDIS,
}, async () => {
  await watchedBroker(async (broker, port, checkSizes) => {
    const q = uniqueQueue("big-extend");
    const n = BIG;
    await broker.publishMany(
      Array.from(
        { length: n },
        (_, i) => ({ message: message(`e${i}`), target: { routingKey: q } }),
      ),
    );
    const taken: Delivery[] = [];
    while (taken.length < n) {
      for (const d of await broker.take([q], { max: 1000 })) taken.push(d);
    }
    const index = "unacked_index";
    const [first, last] = [taken[0].deliveryTag, taken[n - 1].deliveryTag];
    await command(port, "ZADD", index, "XX", 1, first, 1, last);
    const before = Date.now() / 1000;
    await broker.extend(taken);
    await checkSizes();
    assert.ok(Number(await command(port, "ZSCORE", index, first)) >= before - 1);
    assert.ok(Number(await command(port, "ZSCORE", index, last)) >= before - 1);
    await broker.ack(taken);
    assert.equal(await command(port, "ZSCORE", index, last), null);
  });
});

Deno.test({
  name: `redis broker: ack() of ${BIG} deliveries in one call removes them all from unacked ` +
    "and unacked_index, in commands of at most 1,000",
  ignore: WITHOUT_REDIS,
}, async () => {
  await watchedBroker(async (broker, port, checkSizes) => {
    const q = uniqueQueue("big-ack");
    await broker.publishMany(
      Array.from({ length: BIG }, (_, i) => ({
        message: message(`a${i}`),
        target: { routingKey: q },
      })),
    );
    const taken: Delivery[] = [];
    while (taken.length < BIG) {
      for (const d of await broker.take([q], { max: 1000 })) taken.push(d);
    }
    assert.equal(await command(port, "HLEN", "unacked"), BIG);
    await broker.ack(taken);
    await checkSizes();
    assert.equal(await command(port, "HLEN", "unacked"), 0);
    assert.equal(await command(port, "ZCARD", "unacked_index"), 0);
  });
});

Deno.test({
  name:
    "redis broker: a header named delivery_info does not change where a restore sends the message",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("decoy");
    const decoy = { delivery_info: { exchange: "decoy", routing_key: "elsewhere" } };
    await broker.publish(message("z", { headers: decoy }), { routingKey: q });
    const raw = (await r.lrange(`${prefix}${q}`, 0, 0))[0];
    assert.ok(
      raw.indexOf('"delivery_info"') < raw.indexOf('"properties"'),
      "the header comes first",
    );
    const [d] = await broker.take([q], { max: 1 });
    // kombu's restore publishes the entry's body to its exchange and routing key.
    assert.equal(await r.hget(`${prefix}unacked`, d.deliveryTag), `[${raw}, "", "${q}"]`);
    assert.deepEqual(d.headers.delivery_info, decoy.delivery_info);
    await broker.ack([d]);
  } finally {
    await broker.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: a take records the delivery in unacked and unacked_index as kombu does",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("unacked");
    await broker.publish(message("y"), { routingKey: q });
    const raw = (await r.lrange(`${prefix}${q}`, 0, 0))[0];
    const before = Date.now() / 1000;
    const [d] = await broker.take([q], { max: 1 });
    const score = Number(await r.zscore(`${prefix}unacked_index`, d.deliveryTag));
    assert.ok(Math.abs(score - before) < 5, `score ${score} is the delivery time`);
    const stored = await r.hget(`${prefix}unacked`, d.deliveryTag);
    assert.equal(stored, `[${raw}, "", "${q}"]`);
    await broker.ack([d]);
    assert.equal(await r.hget(`${prefix}unacked`, d.deliveryTag), null);
    assert.equal(await r.zscore(`${prefix}unacked_index`, d.deliveryTag), null);
  } finally {
    await broker.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: unacked_index is a skip list holding exactly the deliveries taken",
  ignore: WITHOUT_REDIS,
}, async () => {
  const own = uniquePrefix("index");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(own)}`);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("index");
    const long = "t".repeat(230); // past the tail the take script searches first; retagged
    await r.lpush(
      `${own}${q}`,
      encodeEnvelope(message("a"), { exchange: "", routing_key: q }, "tag-a"),
      encodeEnvelope(message("b"), { exchange: "", routing_key: q }, long),
      encodeEnvelope(message("c"), { exchange: "", routing_key: q }, "tag-c"),
    );
    const got = await broker.take([q], { max: 3 });
    assert.equal(got.length, 3);
    assert.equal(got[0].deliveryTag, "tag-a");
    assert.ok(got[1].deliveryTag.startsWith("celeriac-retag-"), "a tag over 200 bytes is replaced");
    assert.equal(got[2].deliveryTag, "tag-c");
    const index = `${own}unacked_index`;
    // Small sorted sets are listpacks by default, scanned on every insertion.
    assert.equal(await r.object("ENCODING", index), "skiplist");
    assert.deepEqual(
      (await r.zrange(index, "0", "-1")).sort(),
      got.map((d) => d.deliveryTag).sort(),
      "only the deliveries are indexed",
    );
    await broker.ack(got);
    assert.equal(await r.exists(index), 0);
  } finally {
    await broker.close();
    await r.quit();
    await deleteKeys(own);
  }
});

Deno.test({
  name:
    "redis broker: a take of 1,201 deliveries (index ZADDs of 500) indexes each at the take's " +
    "time, a tag repeated within the take retagged and indexed too",
  ignore: WITHOUT_REDIS,
}, async () => {
  const own = uniquePrefix("index-many");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(own)}`);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("index-many");
    const n = 1201;
    await r.lpush(
      `${own}${q}`,
      ...Array.from(
        { length: n },
        (_, i) =>
          encodeEnvelope(message(`m${i}`), { exchange: "", routing_key: q }, `tag-${i % 1000}`),
      ),
    );
    const got = await broker.take([q], { max: 2000 });
    assert.equal(got.length, n);
    const tags = got.map((d) => d.deliveryTag);
    assert.equal(new Set(tags).size, n, "every delivery has a tag of its own");
    assert.equal(tags.filter((t) => t.startsWith("celeriac-retag-")).length, n - 1000);
    const index = `${own}unacked_index`;
    assert.deepEqual((await r.zrange(index, "0", "-1")).sort(), [...tags].sort());
    assert.equal(await r.hlen(`${own}unacked`), n);
    const scores = new Set(await Promise.all(tags.map((t) => r.zscore(index, t))));
    assert.equal(scores.size, 1, "one score: the take's time");
    await broker.ack(got);
    assert.equal(await r.exists(index), 0);
  } finally {
    await broker.close();
    await r.quit();
    await deleteKeys(own);
  }
});

Deno.test({
  name:
    "redis broker: a take reads the tag and routing key kombu wrote, past header keys of the same names",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("decoys");
    // Header keys spelled like the envelope's own come first in the text; the routing key has a
    // "/" (which cjson would write as "\/"): the unacked entry keeps it as written only when the
    // take reads it from the text rather than decoding the envelope.
    const decoys = { delivery_tag: "decoy-tag", delivery_info: { exchange: "decoy" } };
    const raw = encodeEnvelope(
      message("z", { headers: { id: "decoys-1", task: "t", ...decoys } }),
      { exchange: "", routing_key: `${q}/a` },
      "real-tag",
    );
    assert.ok(raw.indexOf('"delivery_tag": "decoy-tag"') < raw.indexOf('"delivery_tag": "real'));
    await r.lpush(`${prefix}${q}`, raw);
    const [d] = await broker.take([q], { max: 1 });
    assert.equal(d.deliveryTag, "real-tag");
    assert.equal(await r.hget(`${prefix}unacked`, "real-tag"), `[${raw}, "", "${q}/a"]`);
    await broker.ack([d]);
    assert.equal(await r.hlen(`${prefix}unacked`), 0);
  } finally {
    await broker.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: close() deletes the consumer's take record (it would linger for an hour)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("take-record");
  const broker = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`,
  );
  const r = await rawRedis();
  try {
    const q = uniqueQueue("record");
    await broker.publish(message("z"), { routingKey: q });
    const got = await broker.take([q], { max: 1 });
    await broker.ack(got);
    assert.equal((await r.keys(`${p}celeriac.take.*`)).length, 1, "a take keeps its record");
    await broker.close();
    assert.deepEqual(await r.keys(`${p}celeriac.take.*`), []);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: after a take that emptied the queues the next take waits first, " +
    "without an empty take script in between, and a message queued meanwhile ends the wait",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("take-wait");
  const broker = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`,
  );
  const r = await rawRedis();
  try {
    const q = uniqueQueue("wait");
    const texts = (ds: Delivery[]) => ds.map((d) => JSON.parse(new TextDecoder().decode(d.body)));
    const seq = async () => {
      const [record] = await r.keys(`${p}celeriac.take.*`);
      return await r.hget(record, "seq");
    };
    await broker.publish(message("first"), { routingKey: q });
    const first = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.deepEqual(texts(first), ["first"]);
    assert.equal(await seq(), "1");
    await broker.ack(first);
    await broker.publish(message("queued"), { routingKey: q });
    const queued = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.deepEqual(texts(queued), ["queued"]);
    // Handed out as the wait claimed it: its take script goes out with the next take (as a
    // worker's consume loop takes again while the task runs), and finds the queue empty.
    const later = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await broker.ack(queued);
    assert.equal(
      await seq(),
      "2",
      "the message queued before the wait is taken by the next script",
    );
    await broker.publish(message("later"), { routingKey: q });
    const taken = await later;
    assert.deepEqual(texts(taken), ["later"]);
    // Acknowledged with no take after it, it would leave its claim list with no take script at
    // all: the next take sends one, its id telling whether a take script ran before the wait.
    const last = broker.take([q], { max: 10, signal: AbortSignal.timeout(300) });
    await broker.ack(taken);
    assert.deepEqual(await last, []);
    assert.equal(await seq(), "3", "the wait came first: no take script found the queue empty");
    assert.equal(await r.hlen(`${p}unacked`), 0, "every one acknowledged");
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: garbage in a queue is parked, logged and does not stop consumption",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("garbage");
    await r.lpush(`${prefix}${q}`, "this is not json");
    await r.lpush(
      `${prefix}${q}`,
      '{"body": "!!", "properties": {"body_encoding": "base64", "delivery_tag": "t-bad-b64"}}',
    );
    await broker.publish(message("good"), { routingKey: q });
    const got = await broker.take([q], { max: 10 });
    assert.equal(got.length, 1);
    assert.equal(new TextDecoder().decode(got[0].body), '"good"');
    const parked = await r.lrange(`${prefix}${PARKED_KEY}`, 0, -1);
    assert.ok(parked.some((p) => p.includes("this is not json") && p.includes("malformed")));
    assert.ok(parked.some((p) => p.includes("t-bad-b64") && p.includes("base64")));
    assert.equal(await r.hget(`${prefix}unacked`, "t-bad-b64"), null);
    await broker.ack(got);
  } finally {
    await broker.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: a rejected message is parked as it was queued, character for character",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("park-exact");
    // as kombu writes it (the take script's fast path), and compact with quotes and a
    // backslash in the routing key (its cjson path): both come back unchanged
    await broker.publish(message("kombu"), { routingKey: q });
    const kombu = (await r.lrange(`${prefix}${q}`, 0, 0))[0];
    const env = JSON.parse(kombu.replace('"kombu"', '"compact"'));
    env.properties.delivery_tag = "t-compact";
    env.properties.delivery_info.routing_key = 'odd", "key\\';
    const compact = JSON.stringify(env);
    await r.lpush(`${prefix}${q}`, compact);
    const got = await broker.take([q], { max: 10 });
    assert.equal(got.length, 2);
    await broker.reject(got.map((delivery) => ({ delivery, reason: "refused" })));
    const parked = (await r.lrange(`${prefix}${PARKED_KEY}`, 0, -1)).map((e) => JSON.parse(e))
      .filter((e) => e.queue === q).map((e) => e.message).sort();
    assert.deepEqual(parked, [compact, kombu].sort());
  } finally {
    await broker.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis broker: an unreachable server gives a BrokerConnectionError naming the URL",
  ignore: WITHOUT_REDIS,
}, async () => {
  await assert.rejects(
    openRedisBroker("redis://:secret@127.0.0.1:1/0"),
    (e: Error & { code?: string }) =>
      e.name === "BrokerConnectionError" && e.code === "BROKER_CONNECTION" &&
      e.message.includes("127.0.0.1:1") && !e.message.includes("secret"),
  );
});

Deno.test({ name: "redis broker: clean up test keys", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});

Deno.test({
  name:
    "redis broker: a subscription the server refuses (PSUBSCRIBE not allowed by ACL) rejects and leaves no kombu binding behind",
  ignore: WITHOUT_REDIS,
}, async () => {
  const servers = await privateServers("acl", (s) => s.redis());
  const port = servers.base;
  try {
    await command(port, "ACL", "SETUSER", "carol", "on", ">pw", "~*", "&*", "+@all", "-psubscribe");
    const broker = await openRedisBroker(`redis://carol:pw@127.0.0.1:${port}/0`);
    const stop = new AbortController();
    try {
      for (const exchange of ["celery.pidbox", "celeryev"]) {
        await assert.rejects(
          broker.subscribe(exchange, () => {}, { signal: stop.signal, queue: `${exchange}.q` }),
          /NOPERM|psubscribe/i,
          exchange,
        );
        assert.deepEqual(
          await command(port, "SMEMBERS", `_kombu.binding.${exchange}`),
          [],
          exchange,
        );
      }
    } finally {
      stop.abort();
      await broker.close();
    }
  } finally {
    await servers.stop();
  }
});

Deno.test({
  name:
    "redis broker: a take's small bodies share one buffer, exactly theirs; a large body has its own",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  try {
    const q = uniqueQueue("bodies");
    const texts = ["a", "", "é ü 漢字", "x".repeat(700), "y".repeat(5000)];
    await broker.publishMany(
      texts.map((t) => ({ message: message(t), target: { routingKey: q } })),
    );
    const got = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.equal(got.length, texts.length);
    const bodies = got.map((d) => new TextDecoder().decode(d.body));
    assert.deepEqual(bodies.map((b) => JSON.parse(b)), texts);
    const small = got.slice(0, 4).map((d) => d.body);
    assert.ok(small.every((b) => b.buffer === small[0].buffer), "small bodies share a buffer");
    const packed = small.reduce((n, b) => n + b.byteLength, 0);
    assert.equal(small[0].buffer.byteLength, packed, "the shared buffer holds these bodies only");
    assert.notEqual(got[4].body.buffer, small[0].buffer);
    assert.equal(got[4].body.buffer.byteLength, got[4].body.byteLength);
    assert.ok(structuredClone(got[0].body).buffer.byteLength <= packed);
    await broker.ack(got);
  } finally {
    await broker.close();
  }
});

Deno.test({
  name:
    "redis broker: a subscription aborted while it is being set up is undone: no kombu binding left",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    // Fanout (pidbox), the events exchange (its own RESP connection) and the replies' direct exchange.
    for (const exchange of ["celery.pidbox", "celeryev", "reply.celery.pidbox"]) {
      const queue = uniqueQueue("aborted-sub");
      const stop = new AbortController();
      const subscribed = broker.subscribe(exchange, () => {}, {
        signal: stop.signal,
        queue,
        bindingKey: exchange === "celeryev" ? "#" : queue,
      });
      stop.abort();
      await subscribed;
      // The replies' clean-up is not awaited by anyone: give its SREM up to 2 s.
      const left = async () =>
        (await r.smembers(`${prefix}_kombu.binding.${exchange}`)).filter((m) => m.includes(queue));
      for (let i = 0; i < 40 && (await left()).length > 0; i++) {
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.deepEqual(await left(), [], exchange);
    }
  } finally {
    await broker.close();
    await r.quit();
  }
});
