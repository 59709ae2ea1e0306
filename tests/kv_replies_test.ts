/**
 * Remote-control replies on KV: a call reads the replies of its own routing
 * key, and leaves nothing in the database that no one deletes. A reply that
 * comes after its call returned (a worker slower than the timeout) used to
 * stay as a message in a queue named after the call, with a depth counter,
 * for ever; every call also left its queue's depth counter. Also: closing
 * the broker while a call's flush reads ends the reading quietly.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Control } from "../mod.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import {
  decodeControlRequest,
  encodeControlReply,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
} from "../src/protocol/control.ts";
import type { Broker } from "../src/broker/port.ts";
import { captureLogs } from "./helpers/logs.ts";

/** A node that answers each request after `delayMs`; resolves with the sends once all are written. */
async function answeringNode(broker: Broker, node: string, delayMs: number, signal: AbortSignal) {
  const sent: Promise<void>[] = [];
  await broker.subscribe(PIDBOX_EXCHANGE, (m) => {
    const req = decodeControlRequest(m);
    if (!req.replyTo || !req.ticket) return;
    const { ticket, replyTo } = req;
    sent.push(
      new Promise((r) => setTimeout(r, delayMs)).then(() =>
        broker.publish(encodeControlReply(node, { ok: "pong" }, { ticket, clock: 1 }), replyTo)
      ),
    );
  }, { signal, queue: `${node}.celery.pidbox` });
  return sent;
}

/** Every key of the file, as text. */
async function keysOf(path: string): Promise<string[]> {
  const kv = await Deno.openKv(path);
  try {
    const out: string[] = [];
    for await (const e of kv.list({ prefix: [] })) out.push(e.key.map(String).join("/"));
    return out;
  } finally {
    kv.close();
  }
}

Deno.test("kv replies: in time they are read and deleted; late ones leave no queue or counter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-replies-" });
  const path = `${dir}/q.sqlite`;
  const broker = await openKvBroker(`kv://${path}`);
  const stop = new AbortController();
  try {
    const prompt = await answeringNode(broker, "quick@h", 0, stop.signal);
    const slow = await answeringNode(broker, "slow@h", 700, stop.signal);
    const control = new Control(() => Promise.resolve(broker));
    for (let round = 0; round < 3; round++) {
      const replies = await control.ping({ timeout: 0.3 });
      assert.deepEqual(replies, [{ "quick@h": { ok: "pong" } }], `round ${round}`);
    }
    await Promise.all(prompt);
    await Promise.all(slow);
    assert.equal(slow.length, 3, "the slow node answered each call, after it returned");
    const keys = await keysOf(path);
    const stray = keys.filter((k) =>
      k.startsWith("celeriac/q/") || k.startsWith("celeriac/depth/")
    );
    assert.deepEqual(stray, [], "no queue message or depth counter left by the calls");
    const kept = keys.filter((k) => k.startsWith("celeriac/reply/"));
    assert.equal(kept.length, 3, "the late replies are kept (expiring) for no reader");
  } finally {
    stop.abort();
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv replies: closing the broker during a call's flush logs no error", async () => {
  const records = await captureLogs("info");
  const broker = await openKvBroker("kv://:memory:");
  try {
    const stop = new AbortController();
    const sub = await broker.subscribe(PIDBOX_REPLY_EXCHANGE, () => {}, {
      signal: stop.signal,
      queue: `oid.t.${PIDBOX_REPLY_EXCHANGE}`,
      bindingKey: "oid.t",
    });
    const flushing = sub!.flush!();
    await broker.close();
    await flushing;
    stop.abort();
    assert.deepEqual(records.filter((r) => r.level === "error").map((r) => r.message), []);
  } finally {
    await broker.close();
    await reset();
  }
});
