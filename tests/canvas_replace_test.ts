/**
 * `ctx.replace(sig)` (Celery's `Task.replace`): the replacement planned as
 * Celery 5.2 builds it (pure), and run on a Redis worker — a task, a chain
 * or a group replacing a task called alone, as a chain step, as a chord
 * header member (its place in the header kept), with a callback, and
 * without being awaited.
 */

import assert from "node:assert/strict";
import { type CeleryEvent, chain, chord, EventState, group } from "../mod.ts";
import {
  chainSignature,
  chordSignature,
  decodeTaskHeaders,
  encodeTaskMessage,
  groupSignature,
  planCanvas,
  type SignatureDict,
} from "../protocol.ts";
import { replacementSignature } from "../src/protocol/canvas_replace.ts";
import { Worker } from "../src/worker/worker.ts";
import {
  add,
  app as tasksApp,
  byChain,
  byGroup,
  byNesting,
  byTask,
  byTaskNoAwait,
  byTaskRethrown,
  byTaskRetried,
  ident,
} from "./apps/canvas_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

function s(task: string, ...args: unknown[]): SignatureDict {
  return { task, args, kwargs: {}, options: {}, subtask_type: null, immutable: false };
}

const noCanvas = { callbacks: null, errbacks: null, chain: null, chord: null };

Deno.test("replace: the replacement's final task takes the task's id, place, links and chain", () => {
  const cb = s("t.cb");
  const eb = s("t.eb");
  const next = { ...s("t.next"), options: { task_id: "NEXT" } };
  const body = { ...s("t.body"), options: { task_id: "BODY" } };
  const task = {
    id: "ID",
    group: "GID",
    groupIndex: 3,
    embed: { callbacks: [cb], errbacks: [eb], chain: [next], chord: body },
  };
  const plan = planCanvas(replacementSignature(s("t.other", 1), task));
  assert.equal(plan.sends.length, 1);
  const [sent] = plan.sends;
  assert.equal(sent.id, "ID");
  assert.equal(sent.group, "GID");
  assert.equal(sent.groupIndex, 3);
  assert.equal(sent.embed.chord?.task, "t.body");
  assert.deepEqual(sent.embed.callbacks?.map((c) => c.task), ["t.cb"]);
  assert.deepEqual(sent.embed.errbacks?.map((c) => c.task), ["t.eb"]);
  assert.deepEqual(sent.embed.chain?.map((c) => c.options.task_id), ["NEXT"]);
});

Deno.test("replace: the replacement carries replaced_task_nesting one above the task's, as Celery", () => {
  const task = { id: "ID", group: null, groupIndex: null, embed: noCanvas };
  const once = planCanvas(replacementSignature(s("t.other"), task)).sends[0];
  assert.equal((once.options.headers as Record<string, unknown>).replaced_task_nesting, 1);
  const own = { ...s("t.other"), options: { headers: { tenant: "acme" } } };
  const chained = replacementSignature(chainSignature([s("t.a"), own]), { ...task, nesting: 2 });
  const steps = chained.kwargs.tasks as SignatureDict[];
  assert.equal(steps[0].options.headers, undefined, "only the step that takes the task's place");
  const last = steps[1];
  assert.equal(last.options.task_id, "ID");
  assert.deepEqual(last.options.headers, { tenant: "acme", replaced_task_nesting: 3 });
  const message = encodeTaskMessage({
    task: "t.other",
    id: "ID",
    args: [],
    kwargs: {},
    origin: "test",
    replyTo: "",
    now: new Date(),
    headers: last.options.headers as Record<string, unknown>,
  });
  assert.equal(decodeTaskHeaders(message).replacedTaskNesting, 3, "read back from the header");
  delete message.headers.replaced_task_nesting;
  assert.equal(decodeTaskHeaders(message).replacedTaskNesting, 0);
  // Celery 5.2 on Redis sends it as a message property (kombu keeps unknown publish options there)
  message.properties.replaced_task_nesting = 2;
  assert.equal(decodeTaskHeaders(message).replacedTaskNesting, 2);
});

Deno.test("replace: a replacing chain's steps keep the task's errbacks, its last step the callbacks", () => {
  const task = {
    id: "ID",
    group: null,
    groupIndex: null,
    embed: {
      callbacks: [s("t.cb")],
      errbacks: [s("t.eb")],
      chain: [{ ...s("t.next"), options: { task_id: "NEXT" } }],
      chord: null,
    },
  };
  const replacing = {
    ...s("celery.chain"),
    kwargs: { tasks: [s("t.p"), s("t.q")] },
    subtask_type: "chain",
  };
  const plan = planCanvas(replacementSignature(replacing, task));
  assert.equal(plan.sends.length, 1);
  const [first] = plan.sends;
  assert.equal(first.task, "t.p");
  assert.deepEqual(first.embed.errbacks?.map((e) => e.task), ["t.eb"], "p failing calls eb");
  assert.equal(first.embed.callbacks, null);
  const [next, q] = first.embed.chain!;
  assert.equal(next.options.task_id, "NEXT");
  assert.equal(q.options.task_id, "ID");
  assert.deepEqual((q.options.link_error as SignatureDict[]).map((e) => e.task), ["t.eb"]);
  assert.deepEqual((q.options.link as SignatureDict[]).map((e) => e.task), ["t.cb"]);
});

Deno.test("replace: a group becomes a chord with celery.accumulate(index=0) as its body", () => {
  const dict = replacementSignature(groupSignature([s("t.a"), s("t.b")]), {
    id: "ID",
    group: null,
    groupIndex: null,
    embed: noCanvas,
  });
  const plan = planCanvas(dict);
  assert.equal(plan.sends.length, 2);
  const body = plan.sends[0].embed.chord!;
  assert.equal(body.task, "celery.accumulate");
  assert.deepEqual(body.kwargs, { index: 0 });
  assert.equal(body.options.task_id, "ID", "the caller's handle gets the group's results");
  assert.deepEqual(plan.chordSizes.map((c) => c.size), [2]);
});

Deno.test("replace: a signature that is part of a chord, or an empty chain, is refused", () => {
  const task = { id: "ID", group: null, groupIndex: null, embed: noCanvas };
  const inChord = { ...s("t.a"), options: { chord: s("t.body") } };
  assert.throws(() => replacementSignature(inChord, task), /must not be part of a chord/);
  const empty = { ...s("celery.chain"), kwargs: { tasks: [] }, subtask_type: "chain" };
  assert.throws(() => replacementSignature(empty, task), /empty chain/);
  // A chord as the replacement is fine: it is not *part* of one.
  assert.equal(
    replacementSignature(chordSignature(groupSignature([]), s("t.b")), task).task,
    "celery.chord",
  );
});

Deno.test({
  name: "replace: tasks replaced by a task, a chain and a group on a Redis worker",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("canvas-replace");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `replace-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({
    app: tasksApp,
    appModule: new URL("./apps/canvas_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 2,
    taskEvents: true,
  });
  await worker.start();
  const T = { timeout: 10_000 };
  const watching = new AbortController();
  const events: CeleryEvent[] = [];
  const stream = tasksApp.events.receive({ signal: watching.signal });
  const subscribed = stream.next().then((e) => e.done || events.push(e.value));
  const collected = (async () => {
    await subscribed;
    for await (const e of stream) events.push(e);
  })();
  // The first event (the worker's heartbeat answering receive()'s wake-up) shows the
  // subscription is live: no task event can be missed after it.
  const late = setTimeout(() => watching.abort(new Error("no event within 10 s")), 10_000);
  await subscribed;
  clearTimeout(late);
  try {
    const replaced = await byTask.delay(1);
    assert.equal(await replaced.get(T), 101);
    // As a Celery 5.2.6 worker's events (captured with a Receiver): the replaced run sends no
    // task-succeeded; its replacement's final task, under the same id, is received, started and
    // succeeds, so a monitor shows it SUCCESS, not running forever.
    const state = new EventState();
    const until = Date.now() + 5_000;
    const steps: string[] = [];
    while (state.tasks.get(replaced.id)?.state !== "SUCCESS" && Date.now() < until) {
      for (const e of events.splice(0)) {
        state.event(e);
        if ((e as { uuid?: string }).uuid === replaced.id) steps.push(e.type);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(steps, [
      "task-received",
      "task-started",
      "task-received",
      "task-started",
      "task-succeeded",
    ]);
    const task = state.tasks.get(replaced.id);
    assert.equal(task?.state, "SUCCESS");
    assert.equal(task?.name, "c.add", "the replacement's received event names its task");
    assert.equal(task?.result, "101");
    assert.equal(await (await byChain.delay(1)).get(T), 12);
    assert.deepEqual(await (await byGroup.delay(1)).get(T), [2, 3]);
    assert.equal(await (await byTaskNoAwait.delay(1)).get(T), 8, "not -1: it was replaced");
    assert.equal(await (await byTaskRethrown.delay(1)).get(T), 201, "no FAILURE under its id");
    assert.equal(
      await (await byTaskRetried.delay(1)).get(T),
      301,
      "no FAILURE (retry limit) under its id",
    );
    const stepped = await chain(add.s(1, 1), byChain.s(), add.s(1000)).applyAsync();
    assert.equal(await stepped.get(T), 1013);
    assert.equal(await stepped.parent!.get(T), 13, "the replaced step's id holds its result");
    const header = [byGroup.s(1), byTask.s(2), add.s(1, 1)] as const;
    const joined = await chord([...header], ident.s()).applyAsync();
    assert.deepEqual(await joined.get(T), [[2, 3], 102, 2], "each member in its header place");
    const callbackId = crypto.randomUUID();
    await byTask.s(1).link(add.s(5).set({ taskId: callbackId })).applyAsync();
    assert.equal(await tasksApp.asyncResult(callbackId).get(T), 106);
    const members = await group([byChain.s(1), byTask.s(2)]).applyAsync();
    assert.deepEqual(await members.get(T), [12, 102]);
    assert.equal(await (await byNesting.delay()).get(T), 1, "replaced once");
    const deeper = await byNesting.applyAsync([], { headers: { replaced_task_nesting: 2 } });
    assert.equal(await deeper.get(T), 3, "the worker carries the received nesting through");
  } finally {
    watching.abort();
    await collected.catch(() => {});
    await worker.stop();
    await tasksApp.close();
    await deleteKeys(prefix);
  }
});
