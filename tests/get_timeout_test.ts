/**
 * A `get()` that times out says why the task was not ready: its state read
 * when the wait ended (PENDING: no worker started it; STARTED: a worker
 * runs it) and, when this client sent the task, the queue it went to.
 */

import assert from "node:assert/strict";
import { Celery, TimeoutError } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";

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
