/**
 * What a task sends, on the threads pool (Web Workers) and the inline pool
 * (the worker's main thread), on Redis: the same `task-sent` events (with
 * `taskSendSentEvent`, as Celery 5.2.6's worker sends them for what its
 * tasks send), the same parent and root ids, the same children; and on
 * rpc:// results over RabbitMQ, their results left unread in a reply queue.
 */

import assert from "node:assert/strict";
import { Celery, type CeleryEvent, chain } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { add, app, boom, eb, routed, sends } from "./apps/pool_sends_app.ts";
import { createVhost, listQueues } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const APP_MODULE = new URL("./apps/pool_sends_app.ts", import.meta.url).href;
const REDIS = "redis://127.0.0.1:6379/0";

interface Seen {
  /** The children's task-sent events: parent id, root id, name, queue. */
  sent: string[];
  /** The children's task-received events: parent id, root id. */
  received: string[];
  /** The sender's children. */
  children: number;
}

/** Collect the app's events from now on (subscribed when this resolves) until `stop()`. */
async function collectEvents(): Promise<{ events: CeleryEvent[]; stop(): Promise<void> }> {
  const watching = new AbortController();
  const events: CeleryEvent[] = [];
  const stream = app.events.receive({ signal: watching.signal, wakeup: true });
  const subscribed = stream.next().then((e) => e.done || events.push(e.value));
  const collected = (async () => {
    await subscribed;
    for await (const e of stream) events.push(e);
  })();
  await subscribed;
  return {
    events,
    stop: async () => {
      watching.abort();
      await collected.catch(() => {});
    },
  };
}

async function run(pool: "threads" | "inline"): Promise<Seen> {
  const queue = `psq-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ broker: REDIS, backend: REDIS, defaultQueue: queue, taskSendSentEvent: true });
  const worker = new Worker({
    app,
    appModule: APP_MODULE,
    queues: [queue],
    concurrency: 1,
    pool,
    taskEvents: true,
  });
  await worker.start();
  const { events, stop } = await collectEvents();
  try {
    const r = await sends.delay();
    const ids = await r.get({ timeout: 10_000 }) as string[];
    const children = await r.children();
    const of = (type: string) => (id: string) =>
      events.find((e) => e.type === type && (e as { uuid?: string }).uuid === id) as
        | Record<string, unknown>
        | undefined;
    const until = Date.now() + 3_000;
    while (Date.now() < until && !ids.every((id) => of("task-received")(id))) {
      await new Promise((res) => setTimeout(res, 50));
    }
    await new Promise((res) => setTimeout(res, 300));
    const rel = (e: Record<string, unknown> | undefined) =>
      e
        ? `${e.parent_id === r.id ? "parent" : e.parent_id} ${
          e.root_id === r.id ? "root" : e.root_id
        }`
        : "none";
    return {
      sent: ids.map(of("task-sent")).map((e) =>
        e ? `${rel(e)} ${e.name} ${e.queue === queue}` : "none"
      ),
      received: ids.map(of("task-received")).map(rel),
      children: children?.length ?? -1,
    };
  } finally {
    await stop();
    await worker.stop();
    await app.close();
  }
}

Deno.test({
  name: "pool sends: a task's sends look the same on the threads and inline pools",
  ignore: WITHOUT_REDIS,
}, async () => {
  const threads = await run("threads");
  const inline = await run("inline");
  // Celery 5.2.6's send_task sends task-sent whenever task_send_sent_event is on, in a worker too.
  const expected: Seen = {
    sent: Array(5).fill(`parent root ps.add true`),
    received: Array(5).fill("parent root"),
    children: 4,
  };
  assert.deepEqual(threads, expected);
  assert.deepEqual(inline, expected);
});

/**
 * The messages ready in the reply queues other than the client's after a task
 * a worker ran sent five tasks, on rpc:// results.
 */
async function replyQueue(pool: "threads" | "inline"): Promise<number[]> {
  const vhost = await createVhost("pool-sends");
  const queue = `psq-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ broker: vhost.url(), backend: "rpc://", defaultQueue: queue });
  const worker = new Worker({ app, appModule: APP_MODULE, queues: [queue], concurrency: 1, pool });
  const client = new Celery({ broker: vhost.url(), backend: "rpc://", defaultQueue: queue });
  await worker.start();
  try {
    const r = await client.sendTask("ps.sends");
    assert.equal((await r.get({ timeout: 10_000 }) as string[]).length, 5);
    await new Promise((res) => setTimeout(res, 300)); // the three children run
    return (await listQueues(vhost.name))
      .filter((q) =>
        q.name !== client.oid && q.arguments["x-expires"] && !q.name.endsWith("pidbox")
      )
      .map((q) => q.messages_ready);
  } finally {
    await client.close();
    await worker.stop();
    await app.close();
    await vhost.remove();
  }
}

Deno.test({
  name:
    "pool sends: rpc:// results of what a task sends wait unread in a reply queue, on either pool",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // As in the reply queue a Celery 5.2.6 worker declares for them (backend.on_task_call): its app
  // never reads them (waiting inside a task is refused). The inline pool's worker consumed them,
  // keeping every child's result in memory.
  assert.deepEqual(await replyQueue("threads"), [5]);
  assert.deepEqual(await replyQueue("inline"), [5]);
});

/**
 * The `task-sent` events of a chain, a task with an errback, a task sending
 * to an exchange and a signature sent to it: who sent it (client or worker),
 * name, arguments, whether the queue is the worker's, exchange and routing key.
 */
async function sentEvents(pool: "threads" | "inline"): Promise<string[]> {
  const queue = `psq-${crypto.randomUUID().slice(0, 8)}`;
  const exchange = `psx-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ broker: REDIS, backend: REDIS, defaultQueue: queue, taskSendSentEvent: true });
  const worker = new Worker({ app, appModule: APP_MODULE, queues: [queue], concurrency: 1, pool });
  await worker.start();
  const { events, stop } = await collectEvents();
  try {
    // What goes to an exchange no queue is bound to is dropped: only its event is seen.
    const steps = chain(
      add.s(1, 1).link(add.si(7, 7)),
      add.s(2).set({ exchange, routingKey: "psrk" }),
    );
    await steps.applyAsync();
    const failed = await boom.s().onError(eb.s()).applyAsync();
    await routed.delay(exchange);
    await add.s(5, 5).set({ exchange, routingKey: "psrk" }).applyAsync();
    const until = Date.now() + 5_000;
    const sent = () => events.filter((e) => e.type === "task-sent");
    while (Date.now() < until && sent().length < 9) {
      await new Promise((res) => setTimeout(res, 50));
    }
    await new Promise((res) => setTimeout(res, 300));
    return sent().map((e) => {
      const f = e as unknown as Record<string, unknown>;
      const args = f.name === "ps.eb" ? String(f.args).replace(failed.id, "id") : f.args;
      const by = f.parent_id ? "worker" : "client";
      return `${by} ${f.name} ${args} ${f.queue === queue} ${f.exchange}|${f.routing_key}`
        .replace(exchange, "X").replace(queue, "Q");
    }).sort();
  } finally {
    await stop();
    await worker.stop();
    await app.close();
  }
}

Deno.test({
  name: "pool sends: task-sent events of follow-ups and routed sends, on either pool, as Celery's",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Celery 5.2.6's worker sends chain steps, link callbacks and errbacks (those taking the task
  // id) with apply_async, which sends task-sent with task_send_sent_event; the event's queue is
  // the routed queue (the default one when only an exchange and routing key are named), never
  // the routing key.
  const expected = [
    "client ps.add (1, 1) true |Q",
    "client ps.add (5, 5) true X|psrk",
    "client ps.boom () true |Q",
    "client ps.routed ('X',) true |Q",
    "worker ps.add (2, 2) true X|psrk",
    "worker ps.add (3, 3) true X|psrk",
    "worker ps.add (4, 4) true X|psrk",
    "worker ps.add (7, 7) true |Q",
    "worker ps.eb ('id',) true |Q",
  ];
  assert.deepEqual(await sentEvents("threads"), expected);
  assert.deepEqual(await sentEvents("inline"), expected);
});
