/**
 * Replies for Celeriac clients: `app.control.inspect().active()` and the
 * other inspect commands, `app.control.ping()`, `call()` and
 * `broadcast(..., { reply: true })` collect `{ node: reply }` from Celeriac
 * workers on Redis and KV; with no worker online an inspect resolves empty
 * at its timeout; a malformed reply is skipped.
 */

import assert from "node:assert/strict";
import { encodeControlReply, PIDBOX_EXCHANGE, PIDBOX_REPLY_EXCHANGE } from "../protocol.ts";
import { Celery } from "../mod.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("replies");

for (const t of transports) {
  Deno.test(`replies on ${t.name}: inspect, ping and call return typed replies by node`, async () => {
    await withWorker(t, { hostname: `replies-${t.name}@%h` }, async (client, worker) => {
      const slow = await client.sendTask("t.slow", [3000]);
      const later = await client.sendTask("t.add", [1, 2], { countdown: 300 });
      const inspect = client.control.inspect({ timeout: 3, destination: [worker.hostname] });
      let active = await inspect.active();
      for (let i = 0; i < 50 && !active[worker.hostname]?.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
        active = await inspect.active();
      }
      assert.deepEqual(Object.keys(active), [worker.hostname]);
      const [running] = active[worker.hostname];
      assert.equal(running.id, slow.id);
      assert.equal(running.name, "t.slow");
      assert.deepEqual(running.args, [3000]);
      assert.equal(running.worker_pid, Deno.pid);

      const safe = await inspect.active({ safe: true });
      assert.equal(safe[worker.hostname][0].args, "(3000,)");

      const scheduled = await inspect.scheduled();
      assert.equal(scheduled[worker.hostname][0].request.id, later.id);
      const query = await inspect.queryTask(slow.id, later.id, "unknown-id");
      assert.deepEqual(Object.keys(query[worker.hostname]).sort(), [slow.id, later.id].sort());
      assert.equal(query[worker.hostname][later.id][0], "scheduled");

      const stats = (await inspect.stats())[worker.hostname];
      assert.equal(stats.pid, Deno.pid);
      assert.ok((stats.total as Record<string, number>)["t.slow"] >= 1);
      assert.equal((await inspect.ping())[worker.hostname].ok, "pong");
      assert.equal(typeof (await inspect.clock())[worker.hostname].clock, "number");
      assert.ok((await inspect.registered())[worker.hostname].includes("t.add"));
      assert.deepEqual(
        (await inspect.activeQueues())[worker.hostname].map((q) => q.name),
        worker.queues,
      );

      const pongs = await client.control.ping({ timeout: 3, destination: [worker.hostname] });
      assert.deepEqual(pongs, [{ [worker.hostname]: { ok: "pong" } }]);
      assert.deepEqual(
        await client.control.broadcast("no_such_command", {}, {
          reply: true,
          timeout: 3,
          destination: [worker.hostname],
        }),
        [{ [worker.hostname]: { error: "KeyError('no_such_command')" } }],
      );
      assert.deepEqual(
        await client.control.call("enable_events", {}, {
          timeout: 3,
          destination: [worker.hostname],
        }),
        [{ [worker.hostname]: { ok: "task events enabled" } }],
      );
      await client.control.revoke(later.id);
    });
  });

  Deno.test(`replies on ${t.name}: no worker online resolves empty at the timeout`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    try {
      const started = performance.now();
      const replies = await app.control.inspect({
        timeout: 0.5,
        destination: ["nobody@nowhere"],
      }).active();
      assert.deepEqual(replies, {});
      assert.deepEqual(await app.control.ping({ timeout: 0.3 }), []);
      assert.ok(performance.now() - started < 10_000, "no hang past the timeouts");
      await assert.rejects(app.control.ping({ timeout: -1 }), RangeError);
    } finally {
      await app.close();
    }
  });

  Deno.test(`replies on ${t.name}: a malformed reply is skipped, a good one kept`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    const broker = await app.broker();
    const stop = new AbortController();
    // A fake node that answers every request twice: garbage, then a real reply.
    await broker.subscribe(PIDBOX_EXCHANGE, (m) => {
      const req = JSON.parse(new TextDecoder().decode(m.body));
      const to = { exchange: PIDBOX_REPLY_EXCHANGE, routingKey: req.reply_to.routing_key };
      const good = encodeControlReply("fake@node", { ok: "pong" }, {
        ticket: req.ticket,
        clock: 1,
      });
      const junk = { ...good, body: new TextEncoder().encode("{not json") };
      broker.publish(junk, to).then(() => broker.publish(good, to));
    }, { signal: stop.signal, queue: "fake@node.celery.pidbox" });
    try {
      assert.deepEqual(await app.control.ping({ timeout: 5, destination: ["fake@node"] }), [
        { "fake@node": { ok: "pong" } },
      ]);
    } finally {
      stop.abort();
      await app.close();
    }
  });
}

Deno.test("replies: clean up", async () => {
  await cleanup();
});
