/**
 * A take's reply read from its bytes (resp_strings.ts) through the broker:
 * a batch mixing an ordinary envelope, one with non-ASCII text (each element
 * then decoded on its own) and one without a delivery tag (recorded under a
 * tag the take script makes, which the delivery must carry: the envelope has
 * none to reuse) hands each out with the tag it is recorded under, and
 * acknowledging them clears their records.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("take-reply");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

/** A kombu envelope of a JSON body `text` (base64), with its headers and properties. */
function envelope(text: string, headers: Record<string, unknown>, tag?: string): string {
  const body = new TextEncoder().encode(JSON.stringify(text)).toBase64();
  const properties: Record<string, unknown> = {
    body_encoding: "base64",
    delivery_info: { exchange: "", routing_key: "q" },
  };
  if (tag !== undefined) properties.delivery_tag = tag;
  return JSON.stringify({
    body,
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: { task: "t.x", id: crypto.randomUUID(), ...headers },
    properties,
  });
}

for (const withOthers of [false, true]) {
  Deno.test({
    name: `redis take reply: ${
      withOthers ? "a non-ASCII envelope beside" : "ASCII envelopes only,"
    } one without a tag and a published one: tags as recorded, acks clear them`,
    ignore: WITHOUT_REDIS,
  }, async () => {
    const broker = await openRedisBroker(url);
    const r = await rawRedis();
    try {
      const q = uniqueQueue("take-reply");
      const key = `${prefix}${q}`;
      await r.lpush(key, envelope("untagged", { argsrepr: "()" }));
      if (withOthers) {
        await r.lpush(key, envelope("caf\u00e9", { argsrepr: "('\u00e9t\u00e9',)" }, "t-e"));
      }
      await broker.publish(message("plain"), { routingKey: q });
      const got = await broker.take([q], { max: 10 });
      const texts = got.map((d) => JSON.parse(new TextDecoder().decode(d.body)));
      assert.deepEqual(
        texts,
        withOthers ? ["untagged", "caf\u00e9", "plain"] : ["untagged", "plain"],
      );
      if (withOthers) assert.equal(got[1].headers.argsrepr, "('\u00e9t\u00e9',)");
      const recorded = await r.hkeys(`${prefix}unacked`);
      for (const d of got) assert.ok(recorded.includes(d.deliveryTag), `${d.deliveryTag} recorded`);
      assert.match(got[0].deliveryTag, /^celeriac-retag-/);
      if (withOthers) assert.equal(got[1].deliveryTag, "t-e");
      await broker.ack(got);
      assert.equal(await r.hlen(`${prefix}unacked`), 0);
      assert.equal(await r.zcard(`${prefix}unacked_index`), 0);
    } finally {
      await broker.close();
      await r.quit();
      await deleteKeys(prefix);
    }
  });
}
