/**
 * A task whose msgpack or JSON body nests far past the depth limit (a few
 * KB nested 20,000 deep) is parked unrun with a ProtocolError FAILURE
 * naming the limit, like any other undecodable body, and the worker goes
 * on. Before, the msgpack one failed with "Maximum call stack size
 * exceeded". On the KV broker.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("deep-body");

const DEPTH = 20_000;
const REFUSED = /Message body nests deeper than 128 levels: refused/;

/** A `t.add` message whose body is `body`, of `contentType`. */
function deepMessage(id: string, contentType: string, body: Uint8Array) {
  const message = encodeTaskMessage({
    task: "t.add",
    id,
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "test",
    replyTo: "",
  });
  return { ...message, body, contentType, contentEncoding: "binary" };
}

Deno.test("worker: a msgpack or JSON body nested 20,000 deep is parked at the depth limit, the rest runs", async () => {
  const msgpack = new Uint8Array(DEPTH + 1).fill(0x91); // arrays of one element, then nil
  msgpack[DEPTH] = 0xc0;
  const json = new TextEncoder().encode("[".repeat(DEPTH) + "]".repeat(DEPTH));
  await withWorker(transports[1], {}, async (client, _worker, queue) => {
    const broker = await client.broker();
    const ids = { msgpack: crypto.randomUUID(), json: crypto.randomUUID() };
    await broker.publish(deepMessage(ids.msgpack, "application/x-msgpack", msgpack), {
      routingKey: queue,
    });
    await broker.publish(
      { ...deepMessage(ids.json, "application/json", json), contentEncoding: "utf-8" },
      { routingKey: queue },
    );
    const after = await client.sendTask<number>("t.add", [1, 1], { queue });
    assert.equal(await after.get({ timeout: 20_000 }), 2, "the worker goes on");
    for (const [kind, id] of Object.entries(ids)) {
      await assert.rejects(client.asyncResult(id).get({ timeout: 20_000 }), (err: unknown) => {
        assert.ok(err instanceof TaskError, `${kind}: ${err}`);
        assert.equal(err.excType, "ProtocolError");
        assert.match(String(err.excMessage[0]), REFUSED, kind);
        return true;
      });
    }
    const parked = await broker.listParked({ limit: 1000 });
    for (const [kind, id] of Object.entries(ids)) {
      const mine = parked.filter((p) => p.taskId === id);
      assert.equal(mine.length, 1, `${kind} parked once`);
      assert.match(mine[0].reason, REFUSED, kind);
    }
  });
});

Deno.test({ name: "worker deep body: cleanup", sanitizeResources: false }, async () => {
  await cleanup();
});
