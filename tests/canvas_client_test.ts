/**
 * The client canvas API without a worker: what each primitive publishes
 * (captured through the app's publisher), inferred result types, signature
 * options, GroupResult over results stored directly in a KV backend, and
 * the apply-time refusal of chords on rpc://.
 */

import assert from "node:assert/strict";
import {
  type AsyncResult,
  Celery,
  chain,
  chord,
  ChordUnsupportedError,
  EncodeError,
  group,
  GroupResult,
  TaskError,
} from "../mod.ts";
import {
  chainSignature,
  decodeTaskBody,
  decodeTaskHeaders,
  encodeResultMeta,
  groupSignature,
  type Message,
  planCanvas,
  PUBLISHER,
  resultTupleToJson,
} from "../protocol.ts";
import { RABBITMQ_URL as AMQP_URL } from "./helpers/rabbitmq.ts";
import { until } from "./helpers/waits.ts";

function capture(app: Celery): { task: string; id: string; msg: Message; queue: string }[] {
  const sent: { task: string; id: string; msg: Message; queue: string }[] = [];
  app[PUBLISHER] = (msg, target) => {
    sent.push({
      task: String(msg.headers.task),
      id: String(msg.headers.id),
      msg,
      queue: target.routingKey,
    });
    return Promise.resolve();
  };
  return sent;
}

function defineTasks(app: Celery) {
  return {
    add: app.task("t.add", (a: number, b: number) => a + b),
    tsum: app.task("t.sum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
    fmt: app.task("t.fmt", { queue: "text" }, (n: number) => `n=${n}`),
  };
}

Deno.test("canvas client: chain() takes a list as Celery's chain([...]); a step that is no signature is named", async () => {
  // chain([a.s(), b.s()]) failed with "Cannot read private member #dict".
  const app = new Celery({ broker: "kv://:memory:" });
  const sent = capture(app);
  const { add, fmt } = defineTasks(app);
  const listed: AsyncResult<string> = await chain([add.s(1, 2), add.s(3), fmt.s()]).applyAsync();
  const spread = await chain(add.s(1, 2), add.s(3), fmt.s()).applyAsync();
  assert.equal(sent.length, 2);
  const steps = (i: number) =>
    decodeTaskBody(sent[i].msg, sent[i].id).embed.chain?.map((s) => s.task);
  assert.deepEqual(steps(0), ["t.fmt", "t.add"]);
  assert.deepEqual(steps(1), steps(0));
  assert.equal(sent[0].task, "t.add");
  assert.ok(listed.id !== spread.id);
  assert.throws(
    () => chain(add.s(1, 2), "t.add" as never),
    /chain\(\) step 2 is not a signature or a group: pass task\.s/,
  );
  await app.close();
});

Deno.test("canvas client: result types are inferred from the tasks", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum, fmt } = defineTasks(app);
  capture(app);
  const c: AsyncResult<string> = await chain(add.s(1, 2), add.s(3), fmt.s()).applyAsync();
  const g: GroupResult<[number, string]> = await group([add.s(1, 1), fmt.s(2)]).applyAsync();
  const k: AsyncResult<number> = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync();
  const m: AsyncResult<number[]> = await tsum.map([[1], [2, 3]]).applyAsync();
  const sm: AsyncResult<number[]> = await add.starmap([[1, 2], [3, 4]]).applyAsync();
  const ch: GroupResult<number[][]> = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
  const p: AsyncResult<string> = await add.s(1, 2).pipe(fmt.s()).applyAsync();
  // @ts-expect-error: add takes numbers
  add.s("x");
  assert.ok(c.parent && k.parent && m.id && sm.id && p.parent);
  assert.equal(g.children.length, 2);
  assert.equal(ch.children.length, 2);
  await app.close();
});

Deno.test("canvas client: each primitive publishes what Celery would, to the task's queue", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum, fmt } = defineTasks(app);
  const sent = capture(app);

  const c = await chain(add.s(1, 2), add.si(10, 10), fmt.s()).applyAsync();
  assert.equal(sent.length, 1);
  const body = decodeTaskBody(sent[0].msg, sent[0].id);
  assert.deepEqual(body.args, [1, 2]);
  assert.deepEqual(body.embed.chain?.map((s) => [s.task, s.immutable]), [["t.fmt", false], [
    "t.add",
    true,
  ]]);
  assert.equal(body.embed.chain?.[0].options.task_id, c.id);
  assert.equal(body.embed.chain?.[0].options.reply_to, app.oid);
  assert.equal((c.parent as AsyncResult).parent?.id, sent[0].id);

  sent.length = 0;
  const g = await group([add.s(1, 1), fmt.s(2)]).applyAsync();
  assert.deepEqual(sent.map((s) => [s.task, s.queue]), [["t.add", "celery"], ["t.fmt", "text"]]);
  assert.deepEqual(sent.map((s) => decodeTaskHeaders(s.msg).group), [g.id, g.id]);
  assert.deepEqual(sent.map((s) => s.id), g.children.map((r) => r.id));

  sent.length = 0;
  const k = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync();
  assert.deepEqual(sent.map((s) => decodeTaskHeaders(s.msg).groupIndex), [0, 1]);
  assert.equal(decodeTaskBody(sent[0].msg, sent[0].id).embed.chord?.options.task_id, k.id);
  const backend = await app.resultBackend();
  assert.ok(backend.chordPartReturn, "kv joins chords");

  sent.length = 0;
  await add.s(1, 2).set({ countdown: 30, priority: 3, headers: { tenant: "a" } }).applyAsync();
  const h = sent[0].msg.headers;
  assert.ok(typeof h.eta === "string" && h.tenant === "a" && sent[0].msg.properties.priority === 3);

  sent.length = 0;
  const linked = add.s(1, 2).link(fmt.s()).onError(app.signature("t.alert"));
  await linked.applyAsync();
  const e = decodeTaskBody(sent[0].msg, sent[0].id).embed;
  assert.deepEqual([e.callbacks?.[0].task, e.errbacks?.[0].task], ["t.fmt", "t.alert"]);
  assert.deepEqual(linked.toDict().options.link, [fmt.s().toDict()]);

  sent.length = 0;
  const py = app.signature<number>("py.mul", [2], {}, { queue: "py" });
  assert.deepEqual(py.toDict(), {
    task: "py.mul",
    args: [2],
    kwargs: {},
    options: { queue: "py" },
    subtask_type: null,
    immutable: false,
  });
  const remote = app.remoteTask<[number, number], number>("py.mul", { queue: "py" });
  await chain(remote.s(2, 3), py).applyAsync();
  assert.equal(sent[0].queue, "py");
  assert.throws(() => py.set({ colour: 1 } as never), TypeError);
  assert.equal(py.clone([3]).args.length, 2);
  assert.equal(py.args.length, 1);
  await app.close();
});

Deno.test("canvas client: changing a signature after composing it leaves the canvas as it was", () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, fmt } = defineTasks(app);
  const member = add.s(1, 2);
  const step = add.s(3).link(fmt.s());
  const g = group([member]);
  const c = chain(step, g);
  const k = chord([member], step);
  member.link(fmt.s()).onError(fmt.s()).set({ queue: "later" });
  step.link(add.s(9)).set({ countdown: 5 });
  const tasks = (d: { kwargs: Record<string, unknown> }) =>
    d.kwargs.tasks as { options: Record<string, unknown> }[];
  assert.deepEqual(tasks(g.toDict())[0].options, {});
  assert.deepEqual(tasks(c.toDict())[0].options, { link: [fmt.s().toDict()] });
  const body = k.toDict().kwargs.body as { options: Record<string, unknown> };
  assert.deepEqual(body.options, { link: [fmt.s().toDict()] });
  assert.deepEqual(Object.keys(member.options), ["link", "link_error", "queue"]);
});

Deno.test("canvas client: a member that cannot be encoded fails applyAsync with EncodeError; nothing of its batch is sent", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add } = defineTasks(app);
  const sent = capture(app);
  // Composing copies no member (no DataCloneError here): the encoder refuses it when applied.
  const g = group([add.s(1, 1), add.s((() => 1) as never, 2), add.s(3, 3)]);
  await assert.rejects(
    g.applyAsync(),
    (err) => err instanceof EncodeError && /^Cannot encode args\[0\]: a function/.test(err.message),
  );
  assert.deepEqual(sent, []);
  await app.close();
});

Deno.test("canvas client: a chord on rpc:// is refused before anything is sent", async () => {
  const app = new Celery({ broker: AMQP_URL, backend: "rpc://" });
  const { add, tsum } = defineTasks(app);
  const sent = capture(app);
  await assert.rejects(
    () => chord([add.s(1, 1)], tsum.s()).applyAsync(),
    (e: unknown) => e instanceof ChordUnsupportedError && /"rpc".*redis:\/\//.test(e.message),
  );
  assert.equal(sent.length, 0);
  await app.close();
  const noBackend = new Celery({ broker: "kv://:memory:", backend: null });
  const t = defineTasks(noBackend);
  capture(noBackend);
  await assert.rejects(
    () => chord([t.add.s(1, 1)], t.tsum.s()).applyAsync(),
    ChordUnsupportedError,
  );
  assert.throws(() => group([]), TypeError);
  await noBackend.close();
});

Deno.test("canvas client: a chain with a chord step on rpc:// is refused before anything is sent", async () => {
  // Celery 5.2.6's chain.prepare_steps refuses it (NotImplementedError); before, the first step
  // was sent and the chord was never joined: get() waited forever.
  const app = new Celery({ broker: AMQP_URL, backend: "rpc://" });
  const { add, tsum } = defineTasks(app);
  const sent = capture(app);
  for (
    const c of [
      chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s())),
      chain(add.s(1, 1), group([add.s(1), add.s(2)]), tsum.s()),
      chain(add.s(1, 1), chain(add.s(2), chord([add.s(1)], tsum.s()))),
    ]
  ) {
    await assert.rejects(
      () => c.applyAsync(),
      (e: unknown) => e instanceof ChordUnsupportedError && /"rpc"/.test(e.message),
    );
  }
  // Said so, for a chain that names no chord.
  await assert.rejects(
    () => chain(add.s(1, 1), group([add.s(1), add.s(2)]), tsum.s()).applyAsync(),
    /a group followed by another step is a chord too/,
  );
  assert.equal(sent.length, 0);
  // A chain ending in a group joins nothing: it is sent.
  await chain(add.s(1, 1), group([add.s(1), add.s(2)])).applyAsync();
  assert.equal(sent.length, 1);
  await app.close();
});

Deno.test("canvas client: a group in a group is flattened into it; one ending a chord header's chain takes the chord's id", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum, fmt } = defineTasks(app);
  const sent = capture(app);
  // As Celery's group._prepared: the inner members take the inner group's place, in order,
  // in the outer group (one GroupResult of three AsyncResults, [2, 4, "n=3"]).
  const g: GroupResult<[number, number, string]> = await group([
    group([add.s(1, 1), add.s(2, 2)]).set({ queue: "inner" }),
    fmt.s(3),
  ]).applyAsync();
  assert.equal(g.children.length, 3);
  assert.deepEqual(g.children.map((c) => c instanceof GroupResult), [false, false, false]);
  // One group id; the inner group's options go on its members.
  assert.deepEqual(sent.map((m) => [m.task, decodeTaskHeaders(m.msg).group, m.queue]), [
    ["t.add", g.id, "inner"],
    ["t.add", g.id, "inner"],
    ["t.fmt", g.id, "text"],
  ]);
  // A dict built elsewhere (Python's, or a worker's) is flattened by the plan too.
  const dict = groupSignature([groupSignature([add.s(1, 1).toDict()]), add.s(3, 3).toDict()]);
  assert.deepEqual(planCanvas(dict).result.members?.map((m) => m.members), [undefined, undefined]);
  const ending = planCanvas(chainSignature([add.s(1, 1).toDict(), dict])).result;
  assert.deepEqual(ending.members?.map((m) => m.members), [undefined, undefined]);
  sent.length = 0;
  // Celery's group.freeze: the group joins the chord, and its members are the chord's members.
  const c = await chord([chain(add.s(1, 1), group([add.s(1), add.s(2)])), add.s(5, 5)], tsum.s())
    .applyAsync();
  const header = c.parent as unknown as GroupResult;
  assert.equal((header.children[0] as unknown as GroupResult).id, header.id);
  assert.equal(sent.length, 2);
  await app.close();
});

Deno.test("canvas client: a group of one in a chain is its member, as Celery's maybe_unroll_group", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum } = defineTasks(app);
  const sent = capture(app);
  const chainOf = (i: number) => decodeTaskBody(sent[i].msg, sent[i].id).embed.chain ?? [];
  // Mid-chain: no one-member chord, the next step gets the member's result (3, not [3]).
  await chain(add.s(1, 1), group([add.s(1)]), add.s(0)).applyAsync();
  assert.deepEqual(chainOf(0).map((s) => [s.task, s.args]), [["t.add", [0]], ["t.add", [1]]]);
  // Ending the chain: the result is the member's AsyncResult, typed so.
  const last: AsyncResult<number> = await chain(add.s(1, 1), group([add.s(2)])).applyAsync();
  assert.equal(last instanceof GroupResult, false);
  assert.equal(chainOf(1)[0].options.task_id, last.id);
  // First: the member runs with the chain's arguments, then the next step.
  await chain(group([add.s(1, 1)]), add.s(0)).applyAsync();
  assert.deepEqual([sent[2].task, chainOf(2).map((s) => s.task)], ["t.add", ["t.add"]]);
  // A group built from an array may have one member or more: the type says either.
  const list: number[] = [1];
  const either: AsyncResult<number> | GroupResult<number[]> = await chain(
    add.s(1, 1),
    group(list.map((n) => add.s(n))),
  ).applyAsync();
  assert.equal(either instanceof GroupResult, false);
  const two = await chain(tsum.s([1]), group([add.s(1), add.s(2)])).applyAsync();
  assert.equal(two.children.length, 2);
  await app.close();
});

Deno.test("canvas client: a group of one right after a first group stays the chord's body, as Celery's group | group", async () => {
  // Review 39: chain(group([a, b]), group([c])) gave 6; Celery 5.2.6's chain() makes it
  // chord(group([a, b]), body=group([c])), so the result is [6] (and a next step gets [6]).
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum } = defineTasks(app);
  const sent = capture(app);
  const bodyOf = (i: number) => decodeTaskBody(sent[i].msg, sent[i].id).embed.chord;
  const kept: GroupResult<[number]> = await chain(
    group([add.s(1, 1), add.s(2, 2)]),
    group([tsum.s()]),
  ).applyAsync();
  assert.equal(kept instanceof GroupResult, true);
  assert.deepEqual([bodyOf(0)?.task, bodyOf(0)?.options.task_id], ["celery.group", kept.id]);
  // Sends `c`; the task names down its first message's chord body, nested chord bodies walked.
  const bodies = async (c: { applyAsync(): Promise<unknown> }) => {
    const i = sent.length;
    await c.applyAsync();
    const names: (string | undefined)[] = [];
    type Body = { task?: string; kwargs: { body?: Body } };
    for (let b = bodyOf(i) as Body | undefined; b; b = b.kwargs.body) names.push(b.task);
    return names;
  };
  // A step after it: Celery's chord(g1, body=chord(group([c]), next)), so next gets [6]
  // (a chain [chord(g1, group), next] stalled on a Celeriac worker and gave 6 on Python's).
  assert.deepEqual(
    await bodies(chain(group([add.s(1, 1), add.s(2, 2)]), group([tsum.s()]), tsum.s())),
    ["celery.chord", "t.sum"],
  );
  // Several members: the same nesting, chord(g1, body=chord(g2, next)) (before: [chord(g1, g2),
  // next], whose next step never ran on a Celeriac worker).
  assert.deepEqual(
    await bodies(chain(group([add.s(1, 1), add.s(2, 2)]), group([tsum.s(), tsum.s()]), tsum.s())),
    ["celery.chord", "t.sum"],
  );
  // Three groups and a step nest all the way (before, the third group's step was left after
  // chord(g1, chord(g2, g3)) and never ran).
  assert.deepEqual(
    await bodies(
      chain(
        group([add.s(1, 1), add.s(2, 2)]),
        group([tsum.s(), tsum.s()]),
        group([tsum.s(), tsum.s()]),
        tsum.s(),
      ),
    ),
    ["celery.chord", "celery.chord", "t.sum"],
  );
  // Anywhere else (here after a first step that is a task) it is its member, as Celery.
  const n = sent.length;
  const unrolled: AsyncResult<number> = await chain(
    add.s(0, 0),
    group([add.s(1), add.s(2)]),
    group([tsum.s()]),
  ).applyAsync();
  assert.equal(unrolled instanceof GroupResult, false);
  const rest = decodeTaskBody(sent[n].msg, sent[n].id).embed.chain ?? [];
  assert.deepEqual(rest.map((s) => s.task), ["celery.chord"]);
  assert.equal((rest[0].kwargs.body as { task?: string }).task, "t.sum");
  await app.close();
});

Deno.test("AsyncResult.collect: a task that sent a group of 200,000 yields them in order", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const backend = await app.resultBackend();
  const store = (taskId: string, result: unknown, children: unknown[] = []) =>
    backend.store([{
      taskId,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId, status: "SUCCESS", result, children, dateDone: new Date() }),
    }]);
  const members = Array.from({ length: 200_000 }, () => ({ id: crypto.randomUUID() }));
  const parent = crypto.randomUUID();
  await store(parent, "sent", [resultTupleToJson({ id: crypto.randomUUID(), members })]);
  await store(members[0].id, 0);
  await store(members[1].id, 1);
  const seen: [string, unknown][] = [];
  // Every result is stored: the timeout (per result, as Celery's collect passes it to each get)
  // only bounds reading them, and the parent's meta of 200,000 children takes 130-530 ms to
  // read and decode alone, over 1 s at load 12 (CI at 27e7152 failed on a 1 s timeout).
  for await (const [r, value] of app.asyncResult(parent).collect({ timeout: 30_000 })) {
    seen.push([r.id, value]);
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, [[parent, "sent"], [members[0].id, 0], [members[1].id, 1]]);
  await app.close();
});

/** Stores a task's final state in the app's result backend, as a worker would. */
async function finalStore(app: Celery) {
  const backend = await app.resultBackend();
  return (id: string, status: "SUCCESS" | "FAILURE", result: unknown) =>
    backend.store([{
      taskId: id,
      status,
      meta: encodeResultMeta({ taskId: id, status, result, dateDone: new Date() }),
    }]);
}

Deno.test("GroupResult: get in order, states, completion order, save/restore, failures", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add } = defineTasks(app);
  capture(app);
  const g = await group([add.s(1, 1), add.s(2, 2), add.s(3, 3)]).applyAsync();
  const store = await finalStore(app);
  const [a, b, c] = g.children.map((r) => r.id);
  assert.equal(await g.ready(), false);
  const order: string[] = [];
  const iterating = (async () => {
    for await (const r of g.results()) order.push(r.id);
  })();
  // Each completion is seen before the next is stored: several found ready in one look come
  // in the group's order (a loaded host once stored all three before the first look).
  await store(c, "SUCCESS", 6);
  await until("c yielded", () => order.length === 1, 10_000, 5);
  await store(a, "SUCCESS", 2);
  assert.equal(await g.completedCount(), 2);
  await until("a yielded", () => order.length === 2, 10_000, 5);
  await store(b, "SUCCESS", 4);
  await iterating;
  assert.deepEqual(order, [c, a, b]);
  assert.deepEqual(await g.get({ timeout: 1000 }), [2, 4, 6]);
  assert.deepEqual(await g.join(), [2, 4, 6]);
  assert.equal(await g.successful(), true);
  await g.save();
  const restored = await app.restoreGroup<number[]>(g.id);
  assert.deepEqual(await restored?.get({ timeout: 1000 }), [2, 4, 6]);
  assert.equal(await app.restoreGroup(crypto.randomUUID()), null);

  const f = await group([add.s(1, 1), add.s(2, 2)]).applyAsync();
  await store(f.children[0].id, "SUCCESS", 2);
  await store(f.children[1].id, "FAILURE", {
    exc_type: "ValueError",
    exc_message: ["boom"],
    exc_module: "builtins",
  });
  await assert.rejects(
    () => f.get({ timeout: 1000 }),
    (e: unknown) => e instanceof TaskError && e.excType === "ValueError",
  );
  assert.equal(await f.failed(), true);
  const slow = await group([add.s(1, 1)]).applyAsync();
  await assert.rejects(() => slow.get({ timeout: 50 }), { name: "TimeoutError" });
  await app.close();
});

Deno.test("get({ timeout: 0 }) returns a finished task's result, of a chain too", async () => {
  // As Celery's get(timeout=0): the timeout bounds the wait for a result, not
  // reading one stored already (here big enough to take longer than 0 ms).
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add } = defineTasks(app);
  capture(app);
  const store = await finalStore(app);
  const big = "x".repeat(4 << 20);
  const one = await add.applyAsync([1, 1]);
  await store(one.id, "SUCCESS", big);
  assert.equal(await one.get({ timeout: 0 }), big);
  const done = await chain(add.s(1, 1), add.s(2)).applyAsync();
  await store(done.parent!.id, "SUCCESS", 2);
  await store(done.id, "SUCCESS", big);
  assert.equal(await done.get({ timeout: 0 }), big);
  const failed = await chain(add.s(1, 1), add.s(2), add.s(3)).applyAsync();
  const error = { exc_type: "ValueError", exc_message: [big], exc_module: "builtins" };
  await store(failed.parent!.parent!.id, "FAILURE", error);
  await store(failed.parent!.id, "FAILURE", error);
  await store(failed.id, "FAILURE", error);
  await assert.rejects(() => failed.get({ timeout: 0 }), { excType: "ValueError" });
  // A group's timeout reaches its members as an abort: a chain member still reads its result.
  const members = await group([chain(add.s(1, 1), add.s(2)), add.s(3, 3)]).applyAsync();
  const [chained, plain] = members.children;
  await store(chained.parent!.id, "SUCCESS", 2);
  await store(chained.id, "SUCCESS", big);
  await store(plain.id, "SUCCESS", 6);
  assert.deepEqual(await members.get({ timeout: 0 }), [big, 6]);
  await app.close();
});

Deno.test("AsyncResult.get of a chain follows its parents: an earlier step's failure ends the wait", async () => {
  // A Python worker that fails a chord in a chain stores the ChordError under the chord's body
  // only; get() of the chain waited for its last step, which nothing ever stores, until the
  // timeout. It watches the earlier steps now, as Celery's get(follow_parents=True).
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const { add, tsum } = defineTasks(app);
  capture(app);
  const store = await finalStore(app);
  const chordError = {
    exc_type: "ChordError",
    exc_message: ["Dependency x raised ValueError('boom')"],
    exc_module: "celery.exceptions",
  };
  const r = await chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s()), add.s(10), add.s(1))
    .applyAsync();
  const step3 = r.parent as AsyncResult;
  const body = step3.parent as AsyncResult;
  const first = body.parent as AsyncResult;
  const waiting = r.get({ timeout: 10_000 }).then(() => null, (e) => e);
  await store(first.id, "SUCCESS", 2);
  await store(body.id, "FAILURE", chordError);
  const err = await waiting;
  assert.ok(err instanceof TaskError, String(err));
  assert.equal(err.excType, "ChordError");
  assert.equal(err.taskId, body.id);
  // The earliest failed step decides, also when later ones are stored too.
  await store(step3.id, "FAILURE", { ...chordError, exc_type: "KeyError" });
  await store(r.id, "FAILURE", { ...chordError, exc_type: "KeyError" });
  const again = await r.get({ timeout: 1000 }).then(() => null, (e) => e);
  assert.equal(again?.taskId, body.id);
  assert.equal((await r.get({ followParents: false }).catch((e) => e)).excType, "KeyError");
  // Without following, the last step alone is waited for.
  const other = await chain(add.s(1, 1), add.s(2)).applyAsync();
  await store(other.parent!.id, "FAILURE", chordError);
  await assert.rejects(() => other.get({ timeout: 50, followParents: false }), {
    name: "TimeoutError",
  });
  await assert.rejects(() => other.get({ timeout: 1000 }), { excType: "ChordError" });
  await assert.rejects(
    () => other.get({ followParent: false } as never),
    /no option "followParent" \(did you mean "followParents"\?\)/,
  );
  await app.close();
});
