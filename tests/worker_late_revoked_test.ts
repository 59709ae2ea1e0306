/**
 * Revoked ids read after the worker started (the read waited past the start,
 * as when the {celeriac} master does not answer) stop the tasks already
 * handed to the pool that have not started, as a revoke broadcast does.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { until } from "./helpers/waits.ts";

Deno.test("worker: a task revoked before the start, handed to the pool before the ids were read, is not run once they are", async () => {
  // Before: the late read only added the ids to the revoked set; a task already handed to
  // the pool (waiting for its turn) ran, SUCCESS with its result.
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  app.task("t.add", (a: number, b: number) => a + b);
  const victim = await app.sendTask<number>("t.add", [2, 3]);
  await app.control.revoke(victim.id);
  const broker = await app.broker();
  const real = broker.listRevoked.bind(broker);
  const read = Promise.withResolvers<void>();
  let answered = false;
  (broker as unknown as Record<string, unknown>).listRevoked = async () => {
    await read.promise;
    const ids = await real();
    setTimeout(() => answered = true, 0); // after the worker's step has used the answer
    return ids;
  };
  // The handler waits for this listener, as a task in the pool waits for its turn.
  const gate = Promise.withResolvers<void>();
  let waiting = false;
  const off = app.on("taskPrerun", async () => {
    waiting = true;
    await gate.promise;
  });
  const { Worker } = await import("../worker.ts");
  const worker = new Worker({ app, pool: "inline", hostname: "late-revoked@%h" });
  try {
    await worker.start();
    await until("the task is handed to the pool", () => waiting, 20_000, 20);
    read.resolve();
    await until("the revoked ids are read", () => answered, 20_000, 20);
    gate.resolve();
    await until("the task is settled", async () => await victim.state() !== "PENDING", 20_000, 50);
    assert.equal(await victim.state(), "REVOKED");
    assert.equal(worker.stats.succeeded, 0);
  } finally {
    off();
    await worker.stop();
    await app.close();
  }
});
