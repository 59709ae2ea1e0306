/**
 * A task whose JSON body starts with a byte-order mark is refused as
 * Celery (kombu's json.loads) refuses it: parked unrun with a reason naming
 * the BOM and a ProtocolError FAILURE, and the worker goes on. Before, the
 * BOM was dropped when the body was read and the task ran. On the KV broker.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("bom-body");

const REFUSED = /byte-order mark \(U\+FEFF\)/;

Deno.test("worker: a JSON task body starting with a BOM is parked naming it, the rest runs", async () => {
  await withWorker(transports[1], {}, async (client, _worker, queue) => {
    const broker = await client.broker();
    const id = crypto.randomUUID();
    const message = addMessage(id);
    const body = new Uint8Array(3 + message.body.length);
    body.set([0xef, 0xbb, 0xbf]);
    body.set(message.body, 3);
    await broker.publish({ ...message, body }, { routingKey: queue });
    const after = await client.sendTask<number>("t.add", [1, 1], { queue });
    assert.equal(await after.get({ timeout: 20_000 }), 2, "the worker goes on");
    await assert.rejects(client.asyncResult(id).get({ timeout: 20_000 }), (err: unknown) => {
      assert.ok(err instanceof TaskError, String(err));
      assert.equal(err.excType, "ProtocolError");
      assert.match(String(err.excMessage[0]), REFUSED);
      return true;
    });
    const mine = (await broker.listParked({ limit: 1000 })).filter((p) => p.taskId === id);
    assert.equal(mine.length, 1, "parked once");
    assert.match(mine[0].reason, REFUSED);
  });
});

Deno.test({ name: "worker BOM body: cleanup", sanitizeResources: false }, async () => {
  await cleanup();
});
