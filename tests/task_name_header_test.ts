/**
 * A task header that is there but not a string (`123`, `null`): named in
 * the error (not "no task header"), parked, and stored as Celery 5.2.6
 * stores it ("Received unregistered task of type 123", `NotRegistered(123)`).
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { TaskNameError } from "../src/protocol/errors.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { refusalInfo } from "../src/worker/result_entries.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

function named(task: unknown, id: string = crypto.randomUUID()) {
  const msg = addMessage(id);
  return { ...msg, headers: { ...msg.headers, task } };
}

Deno.test("task header: a non-string name is a TaskNameError naming it, stored as NotRegistered", () => {
  for (
    const [name, shown, stored] of [[123, "123", 123], [null, "null", null], [
      ["x"],
      "an array",
      "an array",
    ]]
  ) {
    const err = (() => {
      try {
        decodeTaskHeaders(named(name, "id-1"));
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof TaskNameError, `${shown}: ${err}`);
    assert.equal(
      err.message,
      `Task header "task" must be a string (a registered task's name), got ${shown}`,
    );
    assert.equal(err.taskId, "id-1");
    assert.equal(err.code, "TASK_NAME");
    assert.deepEqual(refusalInfo(err), {
      exc_type: "NotRegistered",
      exc_module: "celery.exceptions",
      exc_message: [stored],
    });
  }
});

const { transports, redisPrefix, cleanup } = await redisAndKv("taskname");

Deno.test({
  name: "task header: a worker parks a message named 123 with its reason and NotRegistered(123)",
  ignore: WITHOUT_REDIS,
  fn: async () => {
    try {
      await withWorker(transports[0], {}, async (client, worker, queue) => {
        const id = crypto.randomUUID();
        const r = await rawRedis();
        await r.lpush(
          redisPrefix + queue,
          encodeEnvelope(named(123, id), { exchange: "", routing_key: queue }, crypto.randomUUID()),
        );
        await r.quit();
        const err = await client.asyncResult(id).get({ timeout: 10_000 }).then(
          () => null,
          (e) => e,
        );
        assert.ok(err instanceof TaskError);
        assert.equal(err.excType, "NotRegistered");
        assert.deepEqual(err.excMessage, [123]);
        assert.deepEqual(worker.stats.parked, 1);
        const parked = (await (await client.broker()).listParked()).find((p) => p.taskId === id);
        assert.match(parked?.reason ?? "", /Task header "task" must be a string .*, got 123/);
      });
    } finally {
      await cleanup();
    }
  },
});
