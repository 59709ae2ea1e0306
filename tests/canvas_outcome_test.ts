/**
 * What a worker stores and sends when a canvas step finishes
 * (src/worker/chords.ts), for canvases too large to spread into a call.
 */

import assert from "node:assert/strict";
import type { ResultBackend } from "../src/backend/port.ts";
import { chordSignature, groupSignature } from "../src/protocol/canvas_shape.ts";
import type { Embed, Message, SignatureDict } from "../src/protocol/message.ts";
import { encodeResultMeta, type ResultMeta } from "../src/protocol/result_meta.ts";
import { reset } from "@logtape/logtape";
import { decodeTaskHeaders, type TaskRequest } from "../src/protocol/task_request.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { canvasOutcome, duplicateCanvas } from "../src/worker/chords.ts";
import { joinChords, publishAll } from "../src/worker/canvas_send.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { taskSig } from "./helpers/signatures.ts";

const parent = { id: "first", rootId: "first", origin: "test@host", defaultQueue: "celery" };

/** What the worker stores and sends after task `first` returned 1 with this embed. */
function succeeded(embed: Embed) {
  return canvasOutcome(
    { seq: 1, ok: true, runtime: 1 },
    { embed, value: 1 },
    { id: "first" } as TaskRequest,
    parent,
    new Date(),
    [],
  );
}

Deno.test("canvas outcome: a failed step of a 200,000-step chain marks every later step FAILURE", () => {
  const n = 200_000;
  const chain: SignatureDict[] = Array.from({ length: n }, (_, i) => ({
    task: "t.inc",
    args: [i],
    kwargs: {},
    options: { task_id: `step-${i}` },
    subtask_type: null,
    immutable: false,
  }));
  const embed: Embed = { callbacks: null, errbacks: null, chain, chord: null };
  const meta = encodeResultMeta({
    taskId: "first",
    status: "FAILURE",
    result: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
    traceback: "Traceback: boom",
    dateDone: new Date(),
  });
  const out = canvasOutcome(
    { seq: 1, ok: false, meta, runtime: 1, followUp: { embed, value: null } },
    { embed, value: null },
    { id: "first" } as TaskRequest,
    { id: "first", rootId: "first", origin: "test@host", defaultQueue: "celery" },
    new Date(),
    [],
  );
  assert.equal(out.stores.length, n);
  assert.deepEqual(
    [out.stores[0].taskId, out.stores[n - 1].taskId, out.stores[n - 1].status],
    ["step-0", `step-${n - 1}`, "FAILURE"],
  );
});

Deno.test("canvas outcome: follow-ups go out in order, in batches of at most 1,000, chord sizes first", async () => {
  const sig = (task: string, options: Record<string, unknown> = {}): SignatureDict => ({
    task,
    args: [],
    kwargs: {},
    options,
    subtask_type: null,
    immutable: false,
  });
  const members = Array.from({ length: 2_500 }, (_, i) => sig("t.add", { task_id: `m-${i}` }));
  const chord = chordSignature(groupSignature([sig("t.add"), sig("t.add")]), sig("t.sum"));
  const embed: Embed = {
    callbacks: [chord],
    errbacks: null,
    chain: [groupSignature(members)],
    chord: null,
  };
  const out = succeeded(embed);
  const steps: string[] = [];
  const ids: string[] = [];
  await publishAll(out.publishes, {
    backend: {
      setChordSize: (_groupId: string, size: number) => {
        steps.push(`size ${size}`);
        return Promise.resolve();
      },
    } as unknown as ResultBackend,
    publish: (m: Message) => {
      steps.push("one");
      ids.push(String(m.headers.id));
      return Promise.resolve();
    },
    publishMany: (batch) => {
      steps.push(`batch ${batch.length}`);
      for (const p of batch) ids.push(String(p.message.headers.id));
      return Promise.resolve();
    },
  });
  assert.deepEqual(steps, ["size 2", "batch 1000", "batch 1000", "batch 502"]);
  assert.deepEqual(ids.slice(2), members.map((m) => m.options.task_id));
  assert.deepEqual(ids.slice(0, 2), out.publishes.slice(0, 2).map((p) => p.taskId));
});

Deno.test("canvas outcome: a batch goes out once the one before it is answered; a failed one stops the rest", async () => {
  const members = Array.from({ length: 3_500 }, (_, i): SignatureDict => ({
    task: "t.add",
    args: [],
    kwargs: {},
    options: { task_id: `m-${i}` },
    subtask_type: null,
    immutable: false,
  }));
  const embed: Embed = {
    callbacks: null,
    errbacks: null,
    chain: [groupSignature(members)],
    chord: null,
  };
  const out = succeeded(embed);
  const steps: string[] = [];
  let calls = 0;
  const publishing = publishAll(out.publishes, {
    backend: null,
    publish: () => Promise.reject(new Error("batches only")),
    publishMany: async (batch) => {
      const n = ++calls;
      steps.push(`start ${n} ${batch[0].message.headers.id}`);
      // Answered after a few turns of the event loop: the next batch is encoded meanwhile.
      for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
      steps.push(`end ${n}`);
      if (n === 2) throw new Error("connection lost");
    },
  });
  await assert.rejects(publishing, /connection lost/);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(steps, ["start 1 m-0", "end 1", "start 2 m-1000", "end 2"]);
});

Deno.test("canvas outcome: a chord header member that cannot be encoded fails the chord instead of leaving it waiting", async () => {
  // Raw bytes (a msgpack result) as an argument of a member sent as JSON: it cannot be encoded.
  const header = groupSignature([
    taskSig("t.a", "m-0"),
    taskSig("t.b", "m-1", new Uint8Array([1])),
  ]);
  const chord = chordSignature(header, taskSig("t.sum", "body"));
  const embed: Embed = { callbacks: [chord], errbacks: null, chain: null, chord: null };
  const out = succeeded(embed);
  const backend = await openKvBackend("kv://:memory:");
  const sent: string[] = [];
  const io = {
    backend,
    publish: (m: Message) => (sent.push(String(m.headers.id)), Promise.resolve()),
  };
  try {
    await publishAll(out.publishes, io);
    assert.deepEqual(sent, ["m-0"]);
    assert.equal((await backend.get("m-1"))?.status, "FAILURE");
    // m-0 runs and succeeds: its join completes the chord, which fails with ChordError.
    // m-0 as a worker would receive it: its group header and the chord body in its embed.
    const m0 = (out.publishes[0].message as () => Message)();
    const [, , m0Embed] = JSON.parse(new TextDecoder().decode(m0.body));
    await joinChords([{
      part: {
        groupId: String(m0.headers.group),
        groupIndex: 0,
        taskId: "m-0",
        state: "SUCCESS",
        resultJson: "1",
      },
      body: m0Embed.chord,
      parent: { ...parent, id: "m-0" },
    }], io);
    const body = await backend.get("body");
    assert.equal(body?.status, "FAILURE");
    assert.match(JSON.stringify(body?.result), /ChordError.*m-1/);
  } finally {
    await backend.close();
  }
});

Deno.test("canvas outcome: a chord member on a backend that cannot join chords fails the body once", async () => {
  // rpc:// cannot join: before, the member only logged and the body's waiter hung on PENDING.
  const stored: { taskId: string; status: string; replyTo?: string | null; meta: string }[] = [];
  const backend = {
    transport: "rpc",
    store: (entries: typeof stored) => (stored.push(...entries), Promise.resolve()),
  } as unknown as ResultBackend;
  const body = { ...taskSig("t.sum", "body"), options: { task_id: "body", reply_to: "oid-1" } };
  const io = { backend, publish: () => Promise.resolve() };
  const join = (groupIndex: number) => ({
    part: {
      groupId: "g",
      groupIndex,
      taskId: `m-${groupIndex}`,
      state: "SUCCESS" as const,
      resultJson: "1",
    },
    body,
    parent: { ...parent, id: `m-${groupIndex}` },
  });
  await joinChords([join(1), join(0)], io);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status, e.replyTo]), [[
    "body",
    "FAILURE",
    "oid-1",
  ]]);
  assert.match(stored[0].meta, /ChordError.*cannot join chords/);
});

Deno.test("canvas outcome: a chord body that cannot be sent fails with Celery's Callback error and its errbacks are sent", async () => {
  // Celery 5.2.6's join: ChordError(f'Callback error: {exc!r}') and chord_error_from_stack.
  const errback = (id: string) => taskSig("t.eb", id);
  const bodies = [
    // Its message cannot be encoded.
    {
      ...taskSig("t.sum", "body-enc"),
      options: { task_id: "body-enc", serializer: "nope", link_error: [errback("eb-enc")] },
    },
    // It cannot be planned (an empty chain), yet it has the id it was frozen with.
    {
      task: "celery.chain",
      args: [],
      kwargs: { tasks: [] },
      options: { task_id: "body-plan", link_error: [errback("eb-plan")] },
      subtask_type: "chain",
      immutable: false,
    },
  ];
  const backend = await openKvBackend("kv://:memory:");
  const sent: unknown[][] = [];
  const io = {
    backend,
    publish: (m: Message) => {
      sent.push([m.headers.id, JSON.parse(new TextDecoder().decode(m.body))[0]]);
      return Promise.resolve();
    },
  };
  try {
    for (const [i, body] of bodies.entries()) {
      await backend.setChordSize(`g-${i}`, 1);
      await joinChords([{
        part: {
          groupId: `g-${i}`,
          groupIndex: 0,
          taskId: `m-${i}`,
          state: "SUCCESS",
          resultJson: "1",
        },
        body,
        parent: { ...parent, id: `m-${i}` },
      }], io);
    }
    const enc = await backend.get("body-enc");
    assert.equal(enc?.status, "FAILURE");
    assert.deepEqual(enc?.result, {
      exc_type: "ChordError",
      exc_message: [
        `Callback error: TypeError('Unknown serializer "nope": use "json" or "msgpack"')`,
      ],
      exc_module: "celery.exceptions",
    });
    const plan = await backend.get("body-plan");
    assert.equal(plan?.status, "FAILURE");
    assert.match(
      JSON.stringify(plan?.result),
      /ChordError.*Callback error: TypeError\('A chain needs/,
    );
    // Each body's errback is sent with the body's id, as any failed task's.
    assert.deepEqual(sent, [["eb-enc", ["body-enc"]], ["eb-plan", ["body-plan"]]]);
  } finally {
    await backend.close();
  }
});

Deno.test("duplicate canvas: a suppressed duplicate whose body cannot be read logs that its follow-ups are not sent again", async () => {
  const records = await captureLogs("warning");
  try {
    const message = encodeTaskMessage({
      task: "t.add",
      id: "dup",
      args: [2, 3],
      kwargs: {},
      now: new Date(),
      origin: "test",
      replyTo: "",
    });
    const broken: Message = { ...message, body: new TextEncoder().encode("not json") };
    const meta = { status: "SUCCESS", result: 5 } as ResultMeta;
    const again = duplicateCanvas(
      decodeTaskHeaders(broken),
      broken,
      meta,
      parent,
      new Map(),
      new Date(),
    );
    assert.deepEqual(again, { stores: [], publishes: [], joins: [] });
    const lines = records.map(logLine);
    assert.ok(
      lines.some((l) =>
        l.startsWith("warning Suppressed duplicate dup: its body cannot be read (") &&
        l.endsWith("); its follow-ups are not sent again")
      ),
      lines.join("\n"),
    );
  } finally {
    await reset();
  }
});
