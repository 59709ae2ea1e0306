/**
 * A new RabbitMQ client's first calls made at once (hundreds of sends, a
 * few revokes) share each declaration under way (task queue, revoked
 * stream, pidbox exchange) instead of each queueing the same RPCs on the
 * one admin channel. Before, 1,500 first sends queued 4,500 RPCs ahead of
 * the first revokes: those reached the workers seconds later, after the
 * ETA of the tasks they revoked, which ran (review 24: 8 of 3,837 revoked
 * countdown-3 tasks ran, all in a client's first 2 s). The probes' ETA is 3 s
 * as there: with 1 s, CI (five test files at once on two cores) once saw all
 * 20 revokes arrive after it. The structural regression guard is the first
 * test (one declaration for 50 concurrent first calls).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { AmqpConnection } from "../src/broker/amqp_connection.ts";
import { Declarations } from "../src/broker/amqp_declare.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `amqp first revokes: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

test("concurrent first declarations of a queue send one queue.declare", async () => {
  const vhost = await createVhost("firstdecl");
  const connection = new AmqpConnection(vhost.url());
  try {
    await connection.start();
    const session = await connection.session();
    const declarations = new Declarations();
    const channel = await declarations.admin.run(session, (ch) => Promise.resolve(ch));
    const declared: string[] = [];
    const assertQueue = channel.assertQueue.bind(channel);
    channel.assertQueue = (queue, options) => {
      declared.push(queue ?? "");
      return assertQueue(queue, options);
    };
    await Promise.all([
      ...Array.from({ length: 50 }, () => declarations.taskQueue(session, "firstdecl")),
      ...Array.from({ length: 50 }, () => declarations.revokedStream(session)),
    ]);
    // Before: 50 of each.
    assert.deepEqual(declared.sort(), ["celeriac.revoked", "firstdecl"]);
  } finally {
    await connection.close();
    await vhost.remove();
  }
});

test("revokes among a new client's first 1,500 sends beat their tasks' 3 s ETA", async () => {
  const vhost = await createVhost("firstrev");
  const workerApp = new Celery({ broker: vhost.url(), backend: "kv://:memory:" });
  const ran: string[] = [];
  workerApp.task("firstrev.probe", { bind: true }, (ctx) => {
    ran.push(ctx.id);
  });
  const worker = new Worker({
    app: workerApp,
    pool: "inline",
    hostname: "firstrev@%h",
    queues: ["firstrev"],
  });
  await worker.start();
  try {
    for (let round = 0; round < 3; round++) {
      // A new client each round: its first calls are the sends and revokes below.
      const client = new Celery({ broker: vhost.url(), backend: "kv://:memory:" });
      try {
        // Nobody consumes this queue: the sends load only the client and RabbitMQ.
        const bulk = Array.from(
          { length: 1500 },
          () => client.sendTask("firstrev.bulk", [], { queue: `firstrev-bulk${round}` }),
        );
        const revoked = await Promise.all(Array.from({ length: 20 }, async () => {
          const r = await client.sendTask("firstrev.probe", [], {
            queue: "firstrev",
            countdown: 3,
          });
          await client.control.revoke(r.id);
          return r.id;
        }));
        await Promise.all(bulk);
        // Sent after every revoke returned, due after every probe: once it ran, all were due.
        const last = await client.sendTask("firstrev.probe", [], {
          queue: "firstrev",
          countdown: 3,
        });
        await until("the last probe ran", () => ran.includes(last.id));
        assert.deepEqual(revoked.filter((id) => ran.includes(id)), [], `round ${round}`);
      } finally {
        await client.close();
      }
    }
  } finally {
    await worker.stop();
    await workerApp.close();
    await vhost.remove();
  }
});
