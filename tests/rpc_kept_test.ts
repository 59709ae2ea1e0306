/**
 * What a long-running rpc:// client holds: a ready result handed to the
 * wait that took it is not kept by the backend (its handle keeps it, as
 * Celery's `AsyncResult` cache does), and states nobody waits for are kept
 * for at most `UNCLAIMED_LIMIT` tasks. Counted in entries, not memory.
 */

import assert from "node:assert/strict";
import { openRpcBackend, type RpcBackend, UNCLAIMED_LIMIT } from "../src/backend/rpc.ts";
import { Celery, chain, group } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { success } from "./helpers/rpc_entries.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("rpckept");
const brokerUrl = vhost?.url() ?? "";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `rpc kept: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

/**
 * An app on the test vhost with the rpc:// backend, a queue of its own and task `tests.add`,
 * and an inline worker of `concurrency` for it (not started).
 */
function addApp(concurrency: number) {
  const app = new Celery({
    broker: brokerUrl,
    backend: "rpc://",
    defaultQueue: `rpckept-${crypto.randomUUID().slice(0, 8)}`,
  });
  const add = app.task("tests.add", (a: number, b: number) => a + b);
  const worker = new Worker({ app, concurrency, pool: "inline" });
  return { app, add, worker };
}

test("a ready result handed to its wait is not kept, whether it arrived before or during the wait", async () => {
  const client = await openRpcBackend("rpc://", { brokerUrl });
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  try {
    const during = Array.from({ length: 50 }, () => crypto.randomUUID());
    const waits = during.map((id) => client.waitFor(id, AbortSignal.timeout(10_000)));
    await worker.store(during.map((id, i) => success(id, i, client.replyQueue)));
    assert.deepEqual((await Promise.all(waits)).map((m) => m.result), during.map((_, i) => i));
    const before = Array.from({ length: 50 }, () => crypto.randomUUID());
    await worker.store(before.map((id, i) => success(id, i, client.replyQueue)));
    assert.equal((await client.get(before[0]))?.result, 0); // drained: all 50 arrived, kept
    assert.equal(client.kept, 50);
    for (const [i, id] of before.entries()) {
      assert.equal((await client.waitFor(id, AbortSignal.timeout(10_000))).result, i);
    }
    assert.equal(client.kept, 0);
    // Seen once, as in Celery: the wait that took it has it, a later read finds nothing.
    assert.equal(await client.get(before[0]), null);
  } finally {
    await client.close();
    await worker.close();
  }
});

test("states nobody waits for are kept for the latest UNCLAIMED_LIMIT tasks, the oldest dropped", async () => {
  const client = await openRpcBackend("rpc://", { brokerUrl });
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  try {
    const ids = Array.from({ length: UNCLAIMED_LIMIT + 10 }, () => crypto.randomUUID());
    for (let i = 0; i < ids.length; i += 1000) {
      await worker.store(ids.slice(i, i + 1000).map((id) => success(id, id, client.replyQueue)));
    }
    assert.equal((await client.get(ids.at(-1)!))?.result, ids.at(-1));
    assert.equal(client.kept, UNCLAIMED_LIMIT);
    assert.equal(await client.get(ids[9]), null);
    assert.equal((await client.get(ids[10]))?.result, ids[10]);
  } finally {
    await client.close();
    await worker.close();
  }
});

test("a client that sends and waits in a loop keeps nothing; each handle keeps its own result", async () => {
  const { app, add, worker } = addApp(4);
  try {
    await worker.start();
    const backend = await app.resultBackend() as RpcBackend;
    const handles = [];
    for (let round = 0; round < 5; round++) {
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) => app.sendTask<number>("tests.add", [round, i])),
      );
      assert.deepEqual(
        await Promise.all(sent.map((r) => r.get({ timeout: 10_000 }))),
        sent.map((_, i) => round + i),
      );
      handles.push(...sent);
    }
    assert.equal(backend.kept, 0);
    const last = handles.at(-1)!;
    assert.equal(await last.state(), "SUCCESS");
    assert.equal((await last.info())?.result, 4 + 19);
    assert.equal(await last.get({ timeout: 0 }), 4 + 19);
    // Another handle on the same id: the result was seen once, by the one that waited.
    assert.equal(await app.asyncResult(last.id).state(), "PENDING");

    // A handle polled with state() until ready keeps its result; the backend keeps it for a wait,
    // until that handle's get() takes it.
    const polled = await app.sendTask<number>("tests.add", [1, 1]);
    const states: string[] = [];
    do states.push(await polled.state()); // each read drains the reply queue
     while (states.at(-1) !== "SUCCESS");
    assert.ok(states.slice(0, -1).every((s) => s === "PENDING"), states.join());
    assert.equal(backend.kept, 1);
    assert.equal(await polled.get({ timeout: 0 }), 2);
    // Before: kept until the UNCLAIMED_LIMIT evicted it (1 !== 0).
    assert.equal(backend.kept, 0, "released by the get() the held result answered");
    // A chain's earlier step: its handle has the result (kept by the last step's wait, or
    // still in the backend when that wait found the last step done and looked no further).
    const c = await chain(add.s(1, 1), add.s(2)).applyAsync();
    assert.equal(await c.get({ timeout: 10_000 }), 4);
    assert.equal(await (c.parent as typeof c).get({ timeout: 10_000 }), 2);
    // A group's members yielded by results() are ready on their handles.
    const g = await group([add.s(1, 2), add.s(3, 4)]).applyAsync();
    const values = [];
    for await (const member of g.results({ signal: AbortSignal.timeout(10_000) })) {
      values.push(await member.get({ timeout: 0 }));
    }
    assert.deepEqual(values.sort(), [3, 7]);
    assert.equal(await g.ready(), true);
    assert.deepEqual(await g.get({ timeout: 0 }), [3, 7]);
    assert.equal(backend.kept, 0, "none: every result was taken by a wait or a get()");
  } finally {
    await worker.stop();
    await app.close();
  }
});

test("a state read through another handle leaves the result to the handle that waits", async () => {
  // Before: state() on a second handle took the result from the backend, so the sending handle's
  // get() timed out (still PENDING); Celery 5.2 puts the message back after such a read.
  const { app, worker } = addApp(1);
  try {
    await worker.start();
    const sent = await app.sendTask<number>("tests.add", [1, 1]);
    while (await app.asyncResult(sent.id).state() !== "SUCCESS") {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await app.asyncResult(sent.id).state(), "SUCCESS", "and again");
    assert.equal(await sent.get({ timeout: 10_000 }), 2);
  } finally {
    await worker.stop();
    await app.close();
  }
});

test("a chain's get() answered from results its handles hold releases the backend's copies", async () => {
  // Before: the followParents path read a held result without releasing it, so the copy the
  // backend kept for a wait stayed until UNCLAIMED_LIMIT evicted it.
  const { app, add, worker } = addApp(1);
  const gate = Promise.withResolvers<void>();
  const gated = app.task("tests.gated", async (x: number) => {
    await gate.promise;
    return x;
  });
  try {
    await worker.start();
    const backend = await app.resultBackend() as RpcBackend;
    // The last step held: polled with state() until ready (both steps' results drained).
    const c = await chain(add.s(1, 1), add.s(2)).applyAsync();
    while (await c.state() !== "SUCCESS");
    assert.equal(backend.kept, 2);
    assert.equal(await c.get({ timeout: 0 }), 4);
    assert.equal(backend.kept, 1, "the last step's copy released (2 before the fix)");
    assert.equal(await (c.parent as typeof c).get({ timeout: 0 }), 2);
    assert.equal(backend.kept, 0);
    // An earlier step held while the last one still runs: watched from its handle.
    const d = await chain(add.s(1, 1), gated.s()).applyAsync();
    const first = d.parent as typeof d;
    while (await first.state() !== "SUCCESS");
    assert.equal(backend.kept, 1);
    // The last step ends once d.get() waits for it (its steps watched by then); ended before
    // d.get() read it, d.get() would answer at once without looking at the steps before it.
    const waitFor = backend.waitFor.bind(backend);
    backend.waitFor = (id, ...rest) => {
      if (id === d.id) gate.resolve();
      return waitFor(id, ...rest);
    };
    assert.equal(await d.get({ timeout: 10_000 }), 2);
    assert.equal(backend.kept, 0, "the earlier step's copy released (1 before the fix)");
  } finally {
    gate.resolve();
    await worker.stop();
    await app.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
