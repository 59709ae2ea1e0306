/**
 * A late-ack chord member whose worker is killed after its join completed
 * the chord, before the body was sent, sends the body when it is
 * redelivered, on KV: its join entry records the count it committed, and
 * the member whose count reached the size (only that one) gets the members
 * again while the chord's keys are there. Before, a KV member found its
 * entry recorded and joined no further: the body never ran and its waiters
 * waited for good (Redis' re-join already sent it).
 *
 * The worker is a real process killed at that point: its broker file's
 * write lock is held (by a python3 process) while the last member runs, so
 * its join commits in the result file and the body's publish waits there.
 */

import assert from "node:assert/strict";
import { Celery, chord, type GroupResult } from "../mod.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import { chordPart } from "./helpers/chord_keys.ts";
import { holdWriteLock } from "./helpers/kv_lock.ts";
import { celeriacWorker, type Proc } from "./helpers/procs.ts";
import { until } from "./helpers/waits.ts";
import { withWorker } from "./helpers/worker.ts";

Deno.test("kv chord: a member redelivered after its worker was killed between completing the join and sending the body sends the body", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-late-ack-" });
  const brokerFile = `${dir}/broker.sqlite`;
  const t = { broker: `kv://${brokerFile}?visibility_timeout=2`, backend: `kv://${dir}/r.sqlite` };
  const queue = `kcl-${crypto.randomUUID().slice(0, 8)}`;
  const client = new Celery({ ...t, defaultQueue: queue });
  const raw = await Deno.openKv(`${dir}/r.sqlite`);
  // The last member runs until this file exists: written once the lock is held.
  const gate = `${dir}/gate`;
  let worker: Proc | undefined;
  let lock: Awaited<ReturnType<typeof holdWriteLock>> | undefined;
  try {
    worker = await celeriacWorker([
      "--app",
      "tests/apps/worker_app.ts",
      "--broker",
      t.broker,
      "--backend",
      t.backend,
      "-Q",
      queue,
      "-c",
      "1",
      "--acks-late",
    ]);
    const body = await chord(
      [client.signature("t.add", [1, 1]), client.signature("t.gated", [gate])],
      client.signature("t.positional"),
    ).applyAsync();
    const header = body.parent as GroupResult;
    const last = client.asyncResult(header.children[1].id);
    await until(
      "the chord's last member STARTED on the worker",
      async () => (await last.state()) === "STARTED",
      30_000,
      20,
    );
    lock = await holdWriteLock(brokerFile, 60);
    await Deno.writeTextFile(gate, "");
    // The last member's join commits in the result file; the body's publish waits on the lock.
    const count = ["celeriac", "chord", header.id, "count"];
    await until(
      "the last member's join to take the chord's count to 2 (the broker file's lock held)",
      async () => (await raw.get(count)).value === 2,
      30_000,
      20,
    );
    await worker.stop("SIGKILL");
    await lock.release();
    assert.equal(await body.state(), "PENDING", "the body was not sent before the kill");
    await withWorker(t, {}, async (_client, w) => {
      assert.deepEqual(await body.get({ timeout: 20_000 }), [2, "done"]);
      // The member's redelivery was not run again: only the body ran.
      assert.equal(w.stats.succeeded, 1);
    }, queue);
  } finally {
    await worker?.stop("SIGKILL");
    await lock?.release();
    raw.close();
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv chord: of the members joining again, only the one whose join completed the chord gets its members", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-again-" });
  const backend = await openKvBackend(`kv://${dir}/r.sqlite`);
  try {
    await backend.setChordSize("g", 2);
    assert.equal(await backend.chordPartReturn(chordPart("g", 0)), null);
    assert.equal((await backend.chordPartReturn(chordPart("g", 1)))?.length, 2);
    // Both redelivered before the body was sent: the body goes once, through member 1.
    assert.equal(await backend.chordPartReturn({ ...chordPart("g", 0), again: true }), null);
    const again = await backend.chordPartReturn({ ...chordPart("g", 1), again: true });
    assert.deepEqual(again?.map((m) => m.taskId), ["member-0", "member-1"]);
    // Once the body was sent and the keys deleted, a redelivery sends nothing.
    await backend.chordCleanup("g");
    assert.equal(await backend.chordPartReturn({ ...chordPart("g", 1), again: true }), null);
  } finally {
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
