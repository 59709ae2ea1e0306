/**
 * The RabbitMQ revoked stream (`celeriac.revoked`) keeps one entry per
 * revoke: a Celeriac client stores the ids and says so in its broadcast,
 * so the workers that get it do not append them again; a revoke without
 * that word (Celery's client, `celery control revoke`) is stored by the
 * worker. A read starts 4 hours back (a revoke lasts 3), not at the stream's
 * first entry; the stream keeps 4 hours (one an earlier version declared
 * with a week is used as it is).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { AmqpConnection } from "../src/broker/amqp_connection.ts";
import { Declarations } from "../src/broker/amqp_declare.ts";
import { AmqpPublisher } from "../src/broker/amqp_publish.ts";
import { addRevoked, listRevoked } from "../src/broker/amqp_revoked.ts";
import { REVOKED_STREAM } from "../src/broker/amqp_topology.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost, listQueues } from "./helpers/rabbitmq.ts";
import { revokedStreamEntries } from "./helpers/revoked_stream.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("revstream");
const url = vhost?.url() ?? "";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `amqp revoked stream: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

/** How many entries of the stream name each id. */
async function entriesById(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const v of await revokedStreamEntries(url)) {
    // One id an entry (a revoke of one, or written by an earlier version), or several.
    const ids = typeof v.task_id === "string"
      ? [v.task_id]
      : (v.task_ids as string[] | undefined) ?? [];
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Two workers with remote control on the vhost, run around `fn`. */
async function withTwoWorkers(
  fn: (client: Celery, workers: Worker[]) => Promise<void>,
): Promise<void> {
  const apps = [0, 1, 2].map(() => new Celery({ broker: url, backend: "kv://:memory:" }));
  const [client, ...workerApps] = apps;
  const workers = workerApps.map((app, i) =>
    new Worker({ app, pool: "inline", hostname: `revstream${i}@%h`, queues: ["revstream"] })
  );
  try {
    for (const w of workers) await w.start();
    await fn(client, workers);
  } finally {
    for (const w of workers) await w.stop();
    for (const app of apps) await app.close();
  }
}

/**
 * Wait until what each worker stored before is in the stream: each stores one id
 * more (`Worker.revoke`, on the same publisher after the earlier appends) and the
 * stream is read until both are there.
 */
async function afterWorkersStored(workers: Worker[]): Promise<Map<string, number>> {
  const sentinels = workers.map((w) => {
    const id = crypto.randomUUID();
    w.revoke([id]);
    return id;
  });
  let counts = new Map<string, number>();
  await until(
    "the workers' stores are in the stream",
    async () => {
      counts = await entriesById();
      return sentinels.every((id) => counts.has(id));
    },
    30_000,
    100,
  );
  return counts;
}

test("a Celeriac client's revoke to every worker is one entry, not one more per worker", async () => {
  // Before: the client appended the ids and each of the two workers appended them again,
  // 3 entries per id (1+N), kept for the stream's 7 days.
  await withTwoWorkers(async (client, workers) => {
    const ids = [crypto.randomUUID(), crypto.randomUUID()];
    const replies = await client.control.revoke(ids, { reply: true, timeout: 10, limit: 2 });
    assert.equal(replies.length, 2); // both workers have them (and stored what they store)
    const counts = await afterWorkersStored(workers);
    assert.deepEqual(ids.map((id) => counts.get(id)), [1, 1]);
  });
});

test("a revoke without Celeriac's word (Celery's client) is stored by the workers", async () => {
  // Celery's client never writes the stream: a worker starting later learns the id only
  // because the workers that got the broadcast stored it.
  await withTwoWorkers(async (client, workers) => {
    const id = crypto.randomUUID();
    const args = { task_id: [id], terminate: false, signal: "SIGTERM" };
    const replies = await client.control.call("revoke", args, { timeout: 10, limit: 2 });
    assert.equal(replies.length, 2);
    const counts = await afterWorkersStored(workers);
    assert.ok((counts.get(id) ?? 0) >= 1, `stored ${counts.get(id) ?? 0} times`);
    const late = new Celery({ broker: url, backend: "kv://:memory:" });
    try {
      const revoked = (await (await late.broker()).listRevoked()).map((e) => e.id);
      assert.ok(revoked.includes(id));
    } finally {
      await late.close();
    }
  });
});

test("entries of one id, as earlier versions wrote each, and of several are both read", async () => {
  const [one, two, three] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    const expires = Date.now() / 1000 + 3600;
    ch.sendToQueue(REVOKED_STREAM, Buffer.from(JSON.stringify({ task_id: one, expires })));
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
  await withPublisher(url, async ({ publisher, declarations }) => {
    const expiresAt = new Date(Date.now() + 3_600_000);
    await addRevoked(publisher, declarations, [two, three].map((id) => ({ id, expiresAt })));
    const read = (await listRevoked(publisher, declarations)).map((e) => e.id);
    assert.deepEqual([one, two, three].map((id) => read.includes(id)), [true, true, true]);
  });
  const counts = await entriesById();
  assert.deepEqual([one, two, three].map((id) => counts.get(id)), [1, 1, 1]);
});

test("a read starts at its time, not at the stream's first entry (a worker's: 4 hours back)", async () => {
  // Before: every read went through the whole stream from its first entry (kept 7 days),
  // so an entry written before `since`, still unexpired, was read too.
  await withPublisher(url, async ({ publisher, declarations }) => {
    const expiresAt = new Date(Date.now() + 3_600_000);
    const [before, after] = [crypto.randomUUID(), crypto.randomUUID()];
    await addRevoked(publisher, declarations, [{ id: before, expiresAt }]);
    // RabbitMQ's stream timestamps are read to the second: whole seconds apart on each side.
    await new Promise((r) => setTimeout(r, 2_000));
    const since = new Date();
    await new Promise((r) => setTimeout(r, 2_000));
    await addRevoked(publisher, declarations, [{ id: after, expiresAt }]);
    const read = (await listRevoked(publisher, declarations, { since })).map((e) => e.id);
    assert.deepEqual([read.includes(before), read.includes(after)], [false, true]);
    const byDefault = (await listRevoked(publisher, declarations)).map((e) => e.id);
    assert.deepEqual([byDefault.includes(before), byDefault.includes(after)], [true, true]);
  });
});

type Revoked = { publisher: AmqpPublisher; declarations: Declarations };

/** Run `fn` with a publisher and declarations of Celeriac's on `on`, closed after. */
async function withPublisher<T>(on: string, fn: (r: Revoked) => Promise<T>): Promise<T> {
  const connection = new AmqpConnection(on);
  await connection.start();
  const declarations = new Declarations();
  const closing = new AbortController();
  const publisher = new AmqpPublisher({
    connection,
    declarations,
    publishTimeoutMs: 30_000,
    closing: closing.signal,
  });
  try {
    return await fn({ publisher, declarations });
  } finally {
    closing.abort();
    await connection.close();
  }
}

/** Add `id` to the revoked stream of `on` and read the stream back, through Celeriac's declarations. */
function addAndList(on: string, id: string): Promise<string[]> {
  return withPublisher(on, async ({ publisher, declarations }) => {
    await addRevoked(publisher, declarations, [{ id, expiresAt: new Date(Date.now() + 60_000) }]);
    return (await listRevoked(publisher, declarations)).map((e) => e.id);
  });
}

test("the stream keeps 4 hours (all a read goes back to), not a week", async () => {
  const id = crypto.randomUUID();
  assert.ok((await addAndList(url, id)).includes(id));
  const stream = (await listQueues(vhost!.name)).find((q) => q.name === REVOKED_STREAM);
  // Before: 7D, 56 times the 3 hours a revoke lasts.
  assert.deepEqual(stream?.arguments["x-max-age"], ["S", "4h"]);
});

test("a stream an earlier version declared with a week is used as it is (no PRECONDITION_FAILED)", async () => {
  const old = await createVhost("revold");
  try {
    const conn = await amqp.connect(old.url());
    const ch = await conn.createChannel();
    await ch.assertQueue(REVOKED_STREAM, {
      durable: true,
      arguments: {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-stream-max-segment-size-bytes": 1_000_000,
      },
    });
    await conn.close();
    const id = crypto.randomUUID();
    assert.ok((await addAndList(old.url(), id)).includes(id));
    const stream = (await listQueues(old.name)).find((q) => q.name === REVOKED_STREAM);
    assert.deepEqual(stream?.arguments["x-max-age"], ["S", "7D"]);
  } finally {
    await old.remove();
  }
});

test("a classic queue of that name is refused, naming what to delete (not used as a stream)", async () => {
  const old = await createVhost("revclassic");
  try {
    const conn = await amqp.connect(old.url());
    const ch = await conn.createChannel();
    await ch.assertQueue(REVOKED_STREAM, { durable: true });
    await conn.close();
    // Before: logged as "an earlier version's 7 days" and used, failing later in listRevoked.
    await assert.rejects(
      addAndList(old.url(), crypto.randomUUID()),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "REVOKED_STREAM_MISMATCH", e.message);
        assert.match(e.message, /x-queue-type/);
        assert.match(
          e.message,
          /Delete it when no worker runs \(rabbitmqctl delete_queue celeriac\.revoked/,
        );
        return true;
      },
    );
  } finally {
    await old.remove();
  }
});

test("clean up the vhost", async () => {
  await vhost!.remove();
});
