/**
 * An AMQP count of parked messages made while this broker lists or
 * requeues them: what its own scan holds (read with `basic.get`, out of
 * the queue until its channel closes) is counted, so the dashboard's
 * total does not drop while a listing beside it runs.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { PARKED_QUEUE } from "../src/broker/amqp_topology.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** Park `n` messages of queue `q` on the vhost at `url`, as a worker would have. */
async function park(url: string, n: number, q: string): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(PARKED_QUEUE, { durable: true });
    for (let i = 0; i < n; i++) {
      ch.sendToQueue(PARKED_QUEUE, Buffer.from("[[1],{},{}]"), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: {
          id: `t${i}`,
          task: "tests.x",
          "x-celeriac-parked": { id: `p${i}`, queue: q, task_id: `t${i}`, reason: "test" },
        },
      });
    }
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

Deno.test({
  name: "amqp parked count: what this broker's listing holds is counted while it runs",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("parked-count");
  try {
    await park(vhost.url(), 200, "pc");
    const broker = await openAmqpBroker(vhost.url());
    try {
      assert.equal(await broker.countParked(), 200);
      const counts: number[] = [];
      let listed = false;
      const listing = broker.listParked({ limit: 200 }).finally(() => listed = true);
      while (!listed) counts.push(await broker.countParked());
      assert.equal((await listing).length, 200);
      // Before: 200, 200, 199, ... 2, 0 (what the listing had read was not counted).
      assert.ok(counts.length > 1, `${counts.length} counts`);
      assert.deepEqual(new Set(counts), new Set([200]), counts.join(","));
      // As the dashboard's /api/parked in two tabs at once: a listing and a count each.
      const tab = () => Promise.all([broker.listParked({ limit: 50 }), broker.countParked()]);
      for (const [list, total] of await Promise.all([tab(), tab()])) {
        assert.equal(list.length, 50);
        assert.equal(total, 200);
      }
      // A requeue: what it moved is no longer parked, what it read and left is.
      const moving = broker.requeueParked({ limit: 100 });
      const during: number[] = [];
      let moved = false;
      moving.finally(() => moved = true);
      while (!moved) during.push(await broker.countParked());
      assert.equal(await moving, 100);
      assert.ok(during.every((n) => n >= 100 && n <= 200), during.join(","));
      assert.equal(await broker.countParked(), 100);
    } finally {
      await broker.close();
    }
  } finally {
    await vhost.remove();
  }
});
