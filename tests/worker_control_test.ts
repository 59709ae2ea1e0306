/**
 * Revocation, remote control and leases on real transports (Redis and the
 * embedded KV store): revoked tasks are skipped on arrival, when their ETA
 * comes, and by workers that start later; terminate stops a running task;
 * late-ack and held ETA deliveries keep their leases while the worker lives.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { Celery } from "../mod.ts";
import {
  encodeControlRequest,
  type Message,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
} from "../protocol.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

const redisPrefix = uniquePrefix("control");
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-control-test-" });
const redisUrl = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`;

const transports = [
  { name: "redis", broker: redisUrl, backend: redisUrl, short: `${redisUrl}&visibility_timeout=1` },
  {
    name: "kv",
    broker: `kv://${kvDir}/broker.sqlite`,
    backend: `kv://${kvDir}/broker.sqlite`,
    short: `kv://${kvDir}/broker.sqlite?visibility_timeout=1`,
  },
];

async function revokedMeta(client: Celery, id: string): Promise<unknown> {
  const err = await client.asyncResult(id).get({ timeout: 10_000 }).then(() => null, (e) => e);
  assert.ok(err, "a revoked task must not succeed");
  return {
    state: await client.asyncResult(id).state(),
    message: err.excMessage,
    type: err.excType,
  };
}

for (const t of transports) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test(
      { name: `control on ${t.name}: ${name}`, ignore: t.name === "redis" && WITHOUT_REDIS },
      fn,
    );

  test("a revoked ETA task is never run, and is REVOKED at once", async () => {
    await withWorker(t, {}, async (client, worker) => {
      const r = await client.sendTask<number>("t.add", [1, 2], { countdown: 60 });
      while (worker.stats.received === 0) await new Promise((ok) => setTimeout(ok, 20));
      await r.revoke();
      assert.deepEqual(await revokedMeta(client, r.id), {
        state: "REVOKED",
        message: ["revoked"],
        type: "TaskRevokedError",
      });
      assert.equal(worker.stats.revoked, 1);
      assert.equal(worker.stats.succeeded, 0);
    });
  });

  test("a task revoked before any worker runs is skipped by a worker that starts later", async () => {
    const queue = `cq-${crypto.randomUUID().slice(0, 8)}`;
    const client = new Celery({ broker: t.broker, backend: t.backend, defaultQueue: queue });
    const r = await client.sendTask<number>("t.add", [1, 2]);
    const kept = await client.sendTask<number>("t.add", [3, 4]);
    await client.control.revoke(r.id);
    await client.close();
    await withWorker(t, {}, async (c, worker) => {
      assert.equal(
        await kept.id && await c.asyncResult<number>(kept.id).get({ timeout: 10_000 }),
        7,
      );
      assert.deepEqual(await revokedMeta(c, r.id), {
        state: "REVOKED",
        message: ["revoked"],
        type: "TaskRevokedError",
      });
      assert.equal(worker.stats.succeeded, 1);
    }, queue);
  });

  test("a revoke with a destination reaches only the named nodes, and only they remember it", async () => {
    // It was stored where every worker reads it at start: one not named, or with no such node
    // at all (-d with a typo), skipped the task as well.
    const queue = `cq-${crypto.randomUUID().slice(0, 8)}`;
    const client = new Celery({ broker: t.broker, backend: t.backend, defaultQueue: queue });
    const r = await client.sendTask<number>("t.add", [1, 2]);
    await client.control.revoke(r.id, { destination: ["nobody@nowhere"] });
    await client.close();
    await withWorker(t, {}, async (c, worker) => {
      assert.equal(await c.asyncResult<number>(r.id).get({ timeout: 10_000 }), 3);
      const broker = await c.broker();
      assert.ok(!(await broker.listRevoked()).some((e) => e.id === r.id));
      // Named, the worker has it and remembers it for the workers that start later.
      const id = crypto.randomUUID();
      await c.control.revoke(id, { destination: [worker.hostname], reply: true });
      assert.ok((await broker.listRevoked()).some((e) => e.id === id));
    }, queue);
  });

  test("terminate ends the Web Worker of a task that ignores its signal: REVOKED terminated", async () => {
    const records = await captureLogs("info");
    let id = "";
    try {
      await withWorker(t, {}, async (client, worker) => {
        const r = await client.sendTask<string>("t.slow", [30_000]);
        id = r.id;
        while (worker.active === 0) await new Promise((ok) => setTimeout(ok, 20));
        await client.control.revoke(r.id, { terminate: true });
        assert.deepEqual(await revokedMeta(client, r.id), {
          state: "REVOKED",
          message: ["terminated"],
          type: "TaskRevokedError",
        });
        assert.equal(worker.active, 0);
        assert.equal(
          await client.sendTask<number>("t.add", [1, 1]).then((x) => x.get({ timeout: 10_000 })),
          2,
        );
      });
    } finally {
      await reset();
    }
    // Asked for, so logged at info as Celery's "Terminating ID (signal)": not a warning or an error.
    const about = records.filter((r) => r.message.join("").includes(id));
    assert.deepEqual(about.filter((r) => r.level !== "info" && r.level !== "debug"), []);
    assert.ok(about.some((r) => r.message.join("").startsWith(`Terminating t.slow[${id}]`)));
  });

  test("pidbox: ping and revoke get Celery's replies; other nodes' requests are ignored", async () => {
    await withWorker(t, {}, async (client, worker) => {
      const broker = await client.broker();
      // Listen where replies go: Celery binds <oid>.reply.celery.pidbox to the reply exchange.
      const oid = crypto.randomUUID();
      const replyQueue = `${oid}.reply.celery.pidbox`;
      if (t.name === "redis") {
        const { rawRedis } = await import("./helpers/redis.ts");
        const r = await rawRedis();
        await r.sadd(
          `${redisPrefix}_kombu.binding.reply.celery.pidbox`,
          `${oid}\x06\x16\x06\x16${replyQueue}`,
        );
        await r.quit();
      }
      // Redis: the reply is a message on the bound queue, as kombu leaves it. KV keeps a
      // reply for its call's routing key (kv_replies.ts), read through the reply subscription.
      const takeReply = async (wait: number): Promise<Message | null> => {
        const got = await broker.take([replyQueue], { max: 1, signal: AbortSignal.timeout(wait) });
        await broker.ack(got);
        return got[0] ?? null;
      };
      const replyKeptOnKv = (wait: number) =>
        new Promise<Message | null>((resolve) => {
          const ac = new AbortController();
          const done = (message: Message | null) => {
            clearTimeout(timer);
            ac.abort();
            resolve(message);
          };
          const timer = setTimeout(() => done(null), wait);
          broker.subscribe(PIDBOX_REPLY_EXCHANGE, done, {
            signal: ac.signal,
            bindingKey: replyQueue,
          });
        });
      const ask = async (
        method: string,
        args: Record<string, unknown>,
        destination: string[] | null,
        wait = 5000,
      ) => {
        const ticket = crypto.randomUUID();
        await broker.broadcast(
          PIDBOX_EXCHANGE,
          encodeControlRequest({
            method,
            arguments: args,
            destination,
            ticket,
            replyTo: {
              exchange: "reply.celery.pidbox",
              routingKey: t.name === "redis" ? oid : replyQueue,
            },
          }, { clock: 1, expires: 0 }),
        );
        const got = t.name === "redis" ? await takeReply(wait) : await replyKeptOnKv(wait);
        if (got === null) return null;
        assert.equal(got.headers.ticket, ticket);
        return JSON.parse(new TextDecoder().decode(got.body));
      };
      assert.deepEqual(await ask("ping", {}, null), { [worker.hostname]: { ok: "pong" } });
      assert.deepEqual(await ask("revoke", { task_id: ["a1", "a2"], terminate: false }, null), {
        [worker.hostname]: { ok: "tasks a1, a2 flagged as revoked" },
      });
      const revoked = (await ask("revoked", {}, null))[worker.hostname];
      assert.ok(revoked.includes("a1") && revoked.includes("a2"), `revoked: ${revoked}`);
      assert.deepEqual(await ask("rate_limit", { task_name: "t.add", rate_limit: "100/m" }, null), {
        [worker.hostname]: { ok: "new rate limit set successfully" },
      });
      assert.equal(worker.rateLimit("t.add"), 100 / 60);
      const registered = (await ask("registered", { taskinfoitems: [] }, null))[worker.hostname];
      assert.ok(registered.includes("t.add [rate_limit=100/m]"), `registered: ${registered}`);
      assert.ok(registered.includes("t.fail"));
      assert.deepEqual(await ask("rate_limit", { task_name: "no.such", rate_limit: "1/s" }, null), {
        [worker.hostname]: { error: "unknown task" },
      });
      assert.deepEqual(await ask("rate_limit", { task_name: "t.add", rate_limit: 0 }, null), {
        [worker.hostname]: { ok: "rate limit disabled successfully" },
      });
      assert.equal(worker.rateLimit("t.add"), null);
      assert.deepEqual(await ask("no_such_command", {}, null), {
        [worker.hostname]: { error: "KeyError('no_such_command')" },
      });
      assert.equal(await ask("ping", {}, ["someone@else"], 1000), null);
    });
  });

  test("a late-ack task running past the visibility timeout is not delivered again", async () => {
    await withWorker({ broker: t.short, backend: t.backend }, {}, async (client, worker, queue) => {
      const r = await client.sendTask<number>("t.slow_late", [2500]);
      // The rescuer must only compete for a redelivery, not for the first delivery.
      while (worker.stats.received === 0) await new Promise((ok) => setTimeout(ok, 20));
      const rescuer = new Celery({ broker: t.short, backend: null });
      try {
        const stolen = await (await rescuer.broker()).take([queue], {
          max: 1,
          signal: AbortSignal.timeout(2000),
        });
        assert.deepEqual(stolen.map((d) => d.headers.id), [], "a live task was redelivered");
        assert.equal(await r.get({ timeout: 10_000 }), 2500);
      } finally {
        await rescuer.close();
      }
    });
  });

  test("an ETA task held past the visibility timeout runs once", async () => {
    await withWorker({ broker: t.short, backend: t.backend }, {}, async (client, worker, queue) => {
      const r = await client.sendTask<number>("t.add", [20, 22], { countdown: 2.5 });
      while (worker.stats.received === 0) await new Promise((ok) => setTimeout(ok, 20));
      const rescuer = new Celery({ broker: t.short, backend: null });
      try {
        const stolen = await (await rescuer.broker()).take([queue], {
          max: 1,
          signal: AbortSignal.timeout(2000),
        });
        assert.deepEqual(stolen.map((d) => d.headers.id), [], "a held ETA task was redelivered");
        assert.equal(await r.get({ timeout: 10_000 }), 42);
        assert.equal(worker.stats.received, 1);
      } finally {
        await rescuer.close();
      }
    });
  });

  test("messages sent to a queue after cancel_consumer stay in it", async () => {
    await withWorker(t, {}, async (client, worker) => {
      const q = `cancelled-${crypto.randomUUID().slice(0, 8)}`;
      const to = { destination: [worker.hostname], reply: true as const, timeout: 10 };
      const added = await client.control.broadcast("add_consumer", { queue: q }, to);
      assert.equal(
        JSON.stringify(added).includes(`add consumer ${q}`),
        true,
        JSON.stringify(added),
      );
      // The idle worker now waits on q too (a Redis wait lasts up to a second)
      await new Promise((ok) => setTimeout(ok, 300));
      const cancelled = await client.control.broadcast("cancel_consumer", { queue: q }, to);
      assert.equal(JSON.stringify(cancelled).includes("no longer consuming"), true);
      for (let i = 0; i < 3; i++) await client.sendTask("t.add", [i, i], { queue: q });
      // A wait left on q claims the first within its second: give it more than that
      await new Promise((ok) => setTimeout(ok, 2500));
      assert.equal(await (await client.broker()).queueDepth(q), 3);
      assert.equal(worker.stats.received, 0);
    });
  });

  test("cancel_consumer on the last queue: idle without errors until add_consumer", async () => {
    const records = await captureLogs("info");
    const lines = () => records.map(logLine);
    try {
      await withWorker(t, {}, async (client, worker, queue) => {
        const to = { destination: [worker.hostname], reply: true as const, timeout: 10 };
        await client.control.broadcast("cancel_consumer", { queue }, to);
        const idle = "info Consuming from no queue: waiting for add_consumer";
        while (!lines().includes(idle)) {
          // Before: take() refused the empty list and the loop logged an error every 2 s.
          assert.deepEqual(lines().filter((l) => l.includes("Cannot take messages")), []);
          await new Promise((ok) => setTimeout(ok, 20));
        }
        const r = await client.sendTask<number>("t.add", [2, 3], { queue });
        await client.control.broadcast("add_consumer", { queue }, to);
        assert.equal(await r.get({ timeout: 10_000 }), 5);
      });
    } finally {
      await reset();
    }
    assert.deepEqual(lines().filter((l) => l.startsWith("error ")), []);
    assert.equal(lines().filter((l) => l.includes("Consuming from no queue")).length, 1);
  });
}

Deno.test({ name: "control: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(redisPrefix);
  await Deno.remove(kvDir, { recursive: true });
});
