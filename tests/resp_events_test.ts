import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespConnection } from "../src/broker/resp_connection.ts";
import { RespEvents } from "../src/broker/resp_events.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(done(), what);
}

Deno.test("RESP events: a subscriber whose connection went silent while idle is dropped by its PINGs, reconnected and hears events again", async () => {
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const events = new RespEvents(parseRedisUrl(url), url, { replyTimeoutMs: 200, pingEveryMs: 50 });
  const publisher = new RespConnection({ ...parseRedisUrl(REDIS_URL), name: "celeriac-test-pub" });
  const channel = `celeriac-test-ev-${crypto.randomUUID()}`;
  const got: string[] = [];
  const stop = new AbortController();
  try {
    await events.subscribe(`${channel}*`, (payload) => got.push(dec.decode(payload)), stop.signal);
    await publisher.publish(enc.encode(`${channel}.a`), enc.encode("one"));
    await until(() => got.length === 1, "the first event arrives");
    assert.equal(proxy.accepted, 1);
    // The server's side goes silent: nothing waits for a reply, only the PINGs can tell.
    proxy.holdReplies();
    await until(() => proxy.accepted >= 2, "the silent connection was dropped and another opened");
    proxy.cut();
    // Published until heard: the new connection's PSUBSCRIBE may not have run yet.
    for (let i = 0; i < 100 && got.length < 2; i++) {
      await publisher.publish(enc.encode(`${channel}.b`), enc.encode("two"));
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(got.slice(0, 2), ["one", "two"]);
  } finally {
    stop.abort();
    await events.close();
    await publisher.close();
    proxy.close();
  }
});

Deno.test("RESP events: closing ends a subscriber at once, even with its PING unanswered", async () => {
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const events = new RespEvents(parseRedisUrl(url), url, {
    replyTimeoutMs: 10_000,
    pingEveryMs: 20,
  });
  try {
    await events.subscribe(
      `celeriac-test-ev-${crypto.randomUUID()}*`,
      () => {},
      new AbortController().signal,
    );
    proxy.holdReplies();
    await new Promise((r) => setTimeout(r, 100));
    const began = performance.now();
    await events.close();
    const took = performance.now() - began;
    assert.ok(took < 500, `close() took ${took.toFixed(0)} ms`);
  } finally {
    await events.close();
    proxy.close();
  }
});

Deno.test("RESP events: a publish keeps nothing of its payload while its reply is due", async () => {
  // A batch of task events is tens of KB; held until Redis replies, it
  // outlives the worker's young-generation collections and is promoted.
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const events = new RespEvents(parseRedisUrl(url), url);
  const channel = `celeriac-test-ev-${crypto.randomUUID()}`;
  const freed: string[] = [];
  const registry = new FinalizationRegistry((what: string) => freed.push(what));
  try {
    await events.publish(channel, enc.encode("connects"));
    proxy.holdReplies();
    const due = (() => {
      const pieces = ['{"body": "', "QUJD".repeat(10_000), '"}'];
      const bytes = new Uint8Array(40_000).fill(0x41);
      registry.register(pieces, "pieces");
      registry.register(bytes, "bytes");
      return [events.publish(channel, pieces), events.publish(channel, bytes)];
    })();
    for (const p of due) p.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    gc();
    await until(() => freed.length === 2, "both payloads were collected with their replies due");
    assert.deepEqual(freed.sort(), ["bytes", "pieces"]);
  } finally {
    proxy.cut();
    await events.close();
    proxy.close();
  }
});
