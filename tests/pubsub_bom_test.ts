/**
 * A PUBLISHed payload that starts with a UTF-8 BOM (U+FEFF) reaches the JSON
 * decoder with it, as a list entry or a stored result does (e64ed34: ioredis
 * and kombu keep it): a broadcast is logged as malformed and dropped, a
 * result refused with the error a stored one gets, instead of the BOM being
 * dropped on the subscriber's connection and the message read as valid.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { reset } from "@logtape/logtape";
import type { Message } from "../protocol.ts";
import { openRedisBackend } from "../src/backend/redis.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { openRedisBroker } from "../transports.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 250 && !await done(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(await done(), what);
}

Deno.test({
  name: "Redis fanout: a broadcast whose envelope starts with a BOM is logged as malformed, " +
    "not delivered",
  ignore: WITHOUT_REDIS,
}, async () => {
  const records = await captureLogs("error");
  const broker = await openRedisBroker(REDIS_URL);
  const raw = await rawRedis();
  const stop = new AbortController();
  try {
    const exchange = `celeriac-test-bom-${crypto.randomUUID().slice(0, 8)}`;
    const got: Message[] = [];
    await broker.subscribe(exchange, (m) => got.push(m), { signal: stop.signal });
    const envelope = (text: string) =>
      encodeEnvelope(
        {
          body: new TextEncoder().encode(text),
          contentType: "application/json",
          contentEncoding: "utf-8",
          headers: {},
          properties: {},
        },
        { exchange, routing_key: "" },
        crypto.randomUUID(),
      );
    const channel = `/0.${exchange}`;
    await raw.publish(channel, Buffer.concat([BOM, Buffer.from(envelope('"bom"'))]));
    await raw.publish(channel, envelope('"plain"'));
    await until(() => got.length > 0, "the plain broadcast arrives");
    // Published in order on one connection: the BOM one, if delivered, came first.
    assert.deepEqual(got.map((m) => new TextDecoder().decode(m.body)), ['"plain"']);
    assert.deepEqual(
      records.map(logLine).filter((l) => l.includes(channel)),
      [
        `error Ignored a malformed broadcast on ${channel}: ` +
        "Envelope is not JSON: Invalid JSON at offset 0: it starts with a byte-order mark " +
        "(U+FEFF), which JSON does not allow (Python's json.loads refuses it too): write the " +
        "JSON without one",
      ],
    );
  } finally {
    stop.abort();
    await broker.close();
    await raw.quit();
    await reset();
  }
});

Deno.test({
  name: "Redis results: a published result that starts with a BOM is refused as a stored one is",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("bom");
  const backend = await openRedisBackend(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
  );
  const raw = await rawRedis();
  try {
    const meta = (id: string) =>
      Buffer.concat([
        BOM,
        Buffer.from(encodeResultMeta({
          taskId: id,
          status: "SUCCESS",
          result: 1,
          dateDone: new Date(),
        })),
      ]);
    const failure = async (waiting: Promise<unknown>) => {
      try {
        await waiting;
      } catch (err) {
        return (err as Error).message;
      }
      return "resolved";
    };
    const stored = crypto.randomUUID();
    await raw.set(`${prefix}celery-task-meta-${stored}`, meta(stored));
    const storedError = await failure(backend.waitFor(stored, AbortSignal.timeout(10_000)));
    assert.match(storedError, /result of task/);

    const published = crypto.randomUUID();
    const channel = `${prefix}celery-task-meta-${published}`;
    const waiting = failure(backend.waitFor(published, AbortSignal.timeout(10_000)));
    await until(async () => {
      const [, n] = await raw.pubsub("NUMSUB", channel) as [string, number];
      return n > 0;
    }, "the waiter subscribes");
    await raw.publish(channel, meta(published));
    assert.equal(await waiting, storedError.replace(stored, published));
  } finally {
    await backend.close();
    await raw.quit();
    await deleteKeys(prefix);
  }
});
