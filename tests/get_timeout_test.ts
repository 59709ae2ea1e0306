/**
 * A `get()` that times out says why the task was not ready: its state read
 * when the wait ended (PENDING: no worker started it; STARTED: a worker
 * runs it) and, when this client sent the task, the queue it went to. That
 * state comes from the one read the backend makes at the timeout (to return
 * a result stored by then), on KV, Redis and rpc://: the client reads no
 * second time.
 */

import assert from "node:assert/strict";
import { Celery, TimeoutError } from "../mod.ts";
import type { ResultBackend } from "../src/backend/port.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

function timedOut(check: (err: TimeoutError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof TimeoutError, String(err));
    check(err);
    return true;
  };
}

Deno.test("get timeout: a task no worker took names its queue and PENDING", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const nobody = app.task("gt.nobody", { queue: "gt-nobody-listens" }, () => 1);
    const sent = await nobody.delay();
    assert.equal(sent.queue, "gt-nobody-listens");
    await assert.rejects(
      sent.get({ timeout: 100 }),
      timedOut((err) => {
        assert.equal(err.state, "PENDING");
        assert.equal(err.queue, "gt-nobody-listens");
        assert.equal(
          err.message,
          `Task ${sent.id} was not ready after 100 ms: it is still PENDING (no worker has ` +
            "started it, or one runs it without trackStarted): is a worker consuming queue " +
            '"gt-nobody-listens"? Raise the timeout for long tasks',
        );
      }),
    );
    const [batch] = await app.sendMany([{
      name: "gt.nobody",
      args: [],
      options: { queue: "gt-b" },
    }]);
    assert.equal(batch.queue, "gt-b");
    // A handle made from an id alone does not know the queue.
    await assert.rejects(
      app.asyncResult(sent.id).get({ timeout: 50 }),
      timedOut((err) => {
        assert.equal(err.queue, undefined);
        assert.match(err.message, /still PENDING .*: is a worker consuming its queue\?/);
      }),
    );
  } finally {
    await app.close();
  }
});

Deno.test("get timeout: a task a worker runs says STARTED, not a queue to check", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-get-timeout-" });
  const url = `kv://${dir}/db.sqlite`;
  const app = new Celery({ broker: url, backend: url });
  const release = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  const slow = app.task("gt.slow", { trackStarted: true, queue: "gt-slow" }, async () => {
    started.resolve();
    await release.promise;
    return "done";
  });
  const worker = new Worker({
    app,
    pool: "inline",
    concurrency: 1,
    queues: ["gt-slow"],
    hostname: "gt@test",
  });
  try {
    await worker.start();
    const sent = await slow.delay();
    await started.promise;
    // STARTED is stored before the task runs; the store may trail the call by a moment.
    while ((await sent.state()) !== "STARTED") await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(
      sent.get({ timeout: 100 }),
      timedOut((err) => {
        assert.equal(err.state, "STARTED");
        assert.equal(
          err.message,
          `Task ${sent.id} was not ready after 100 ms: it is STARTED (a worker runs it): raise ` +
            "the timeout for long tasks",
        );
      }),
    );
    release.resolve();
    assert.equal(await sent.get({ timeout: 10_000 }), "done");
  } finally {
    release.resolve();
    await worker.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Count the backend's reads (`get`), the ones it makes itself included. */
function countReads(backend: ResultBackend): { reads: number } {
  const count = { reads: 0 };
  const get = backend.get.bind(backend);
  backend.get = (taskId) => {
    count.reads++;
    return get(taskId);
  };
  return count;
}

/** `get({ timeout: 0 })` of a task not ready: its TimeoutError's state, and the reads made. */
async function timedOutAfter(app: Celery, id: string): Promise<{ state?: string; reads: number }> {
  const backend = await app.resultBackend();
  // Connected first: an unconnected backend reads nothing at the abort (the client reads then).
  await backend.prepare?.();
  await backend.get(crypto.randomUUID());
  const count = countReads(backend);
  // Timeout 0: the wait ends at the first timer turn. Every read counted is one made for the
  // timeout: the wait's own (Redis) goes behind its SUBSCRIBE, on the subscriber's connection.
  const err = await app.asyncResult(id).get({ timeout: 0 }).then(
    () => assert.fail("resolved"),
    (e) => e,
  );
  assert.ok(err instanceof TimeoutError, String(err));
  return { state: err.state, reads: count.reads };
}

/** A PENDING task, then a STARTED one: each state named after one read. */
async function oneRead(app: Celery, stores: boolean): Promise<void> {
  assert.deepEqual(await timedOutAfter(app, crypto.randomUUID()), { state: "PENDING", reads: 1 });
  if (!stores) return;
  const id = crypto.randomUUID();
  const meta = encodeResultMeta({ taskId: id, status: "STARTED", result: { pid: 1 } });
  await (await app.resultBackend()).store([{ taskId: id, status: "STARTED", meta }]);
  assert.deepEqual(await timedOutAfter(app, id), { state: "STARTED", reads: 1 });
}

Deno.test("get timeout: one read names the state (before: two) — KV", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    await oneRead(app, true);
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "get timeout: one read names the state (before: two) — Redis",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("get-reads");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const app = new Celery({ broker: url, backend: url });
  try {
    await oneRead(app, true);
  } finally {
    await app.close();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "get timeout: a wait on Redis's first subscriber connect reads the key once (before: " +
    "twice, the connect's re-read)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("get-first-connect");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const app = new Celery({ broker: url, backend: url });
  try {
    const backend = await app.resultBackend();
    await backend.prepare?.();
    await backend.get(crypto.randomUUID());
    const count = countReads(backend);
    // Long enough for the subscriber to connect first (else one read either way): its key is
    // read behind its SUBSCRIBE (not counted), the connect itself read it again (counted).
    const err = await app.asyncResult(crypto.randomUUID()).get({ timeout: 500 }).catch((e) => e);
    assert.ok(err instanceof TimeoutError, String(err));
    assert.equal(err.state, "PENDING");
    // The one read at the timeout.
    assert.equal(count.reads, 1);
  } finally {
    await app.close();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "get timeout: one read names the state (before: two) — rpc://",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("get-reads");
  const app = new Celery({ broker: vhost.url(), backend: "rpc://" });
  try {
    await oneRead(app, false);
  } finally {
    await app.close();
    await vhost.remove();
  }
});

Deno.test("get timeout: more than 2^31 - 1 ms waits (a timer that long fired at once)", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const stop = new AbortController();
    const started = Date.now();
    const waiting = app.asyncResult(crypto.randomUUID()).get({
      timeout: 3_000_000_000,
      signal: stop.signal,
    }).catch((err) => err);
    setTimeout(() => stop.abort(new Error("stopped by the test")), 300);
    const err = await waiting;
    assert.ok(!(err instanceof TimeoutError), `timed out after ${Date.now() - started} ms`);
    assert.equal((err as Error).message, "stopped by the test");
  } finally {
    await app.close();
  }
});
