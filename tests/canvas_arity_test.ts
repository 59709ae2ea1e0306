/**
 * Applying a signature or canvas refuses, before anything is sent, a call
 * it sends now that its task's handler cannot take — `add.s(1).delay()`, a
 * group's or a chord header's member, a chain's first step, an empty
 * chord's body — as Celery's `apply_async` of each one raises `TypeError`
 * at the caller (`Task.typing`). A chain's later steps and a chord's body
 * get their parent's result at run time and are not checked here (the
 * worker that sends them checks them), as in Celery.
 */

import assert from "node:assert/strict";
import { type Celery, chain, chord, group, TaskArgumentsError } from "../mod.ts";
import { PYTHON } from "./helpers/procs.ts";
import { refusal, withMemoryApp } from "./helpers/refusals.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

/** A signature factory called with arguments its type does not allow, as `deno run` lets a program do. */
type LooseSig = (...args: unknown[]) => ReturnType<typeof chain>;

/** A task's `s` (or `si`) that takes any arguments. */
function loose(task: unknown, which: "s" | "si" = "s"): LooseSig {
  const t = task as Record<"s" | "si", LooseSig>;
  return (...args) => t[which](...args);
}

const withApp = (fn: (app: Celery, depth: () => Promise<number>) => Promise<void>) =>
  withMemoryApp(fn, "kv://:memory:");

function define(app: Celery) {
  const add = app.task("tasks.add", (a: number, b: number) => a + b);
  const one = app.task("tasks.one", (a: number) => a);
  const tsum = app.task("tasks.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  return {
    add,
    s: loose(add),
    si: loose(add, "si"),
    one: loose(one),
    tsum,
  };
}

const MISSING_B = "add() missing 1 required positional argument: 'b'";

Deno.test("canvas arity: a signature's call is checked with the arguments it is sent with", async () => {
  await withApp(async (app, depth) => {
    const { s, si } = define(app);
    // Before: sent, and the worker failed it with TypeError.
    const few = await refusal(s(1).delay());
    assert.equal(few.task, "tasks.add");
    assert.equal(few.reason, MISSING_B);
    assert.match(few.message, /^tasks\.add cannot take this call, so nothing was sent: add\(\)/);
    assert.equal(
      (await refusal(s(1, 2, 3).applyAsync())).reason,
      "add() takes 2 positional arguments but 3 were given",
    );
    assert.match(
      (await refusal(app.signature("tasks.add", [1, 2], { c: 1 }).delay())).reason,
      /^tasks\.add\(\) got keyword argument\(s\) c, but its handler takes positional arguments only/,
    );
    // An immutable signature ignores the call's arguments: si(1) stays one short.
    assert.equal((await refusal(si(1).delay(2))).reason, MISSING_B);
    assert.equal((await refusal(app.signature("tasks.add", [1]).delay())).reason, MISSING_B);
    assert.equal(await depth(), 0);
    await s(1).delay(2);
    await si(1, 2).delay(3);
    assert.equal(await depth(), 2);
  });
});

Deno.test("canvas arity: one unfit group or chord header member refuses the whole canvas", async () => {
  await withApp(async (app, depth) => {
    const { s, tsum } = define(app);
    // Celery sends the members before the refused one; nothing is sent here.
    assert.equal((await refusal(group([s(1, 2), s(3, 4), s(1)]).delay())).reason, MISSING_B);
    assert.equal((await refusal(chord([s(1, 2), s(1)], tsum.s()).delay())).reason, MISSING_B);
    assert.equal((await refusal(group([s(1), s(2)]).delay())).reason, MISSING_B);
    // A group applied inside a chain's first step, and a group followed by a step (a chord).
    assert.equal(
      (await refusal(chain(group([s(1, 2), s(1)]), tsum.s()).delay())).reason,
      MISSING_B,
    );
    assert.equal((await refusal(group([chain(s(1), s(2))]).delay())).reason, MISSING_B);
    assert.equal(await depth(), 0);
    // The group's partial arguments go first in each member's call.
    await group([s(1), s(2)]).delay(5);
    assert.equal(await depth(), 2);
    await chord([s(1)], tsum.s()).delay(2);
    assert.equal(await depth(), 3);
  });
});

Deno.test("canvas arity: a chain's first step is checked, its later steps and a chord body not", async () => {
  await withApp(async (app, depth) => {
    const { s, si, one, tsum } = define(app);
    assert.equal((await refusal(chain(s(1), s(2)).delay())).reason, MISSING_B);
    // Empty header: the body is sent now, with [] as its first argument.
    assert.equal((await refusal(chord([], s()).delay())).reason, MISSING_B);
    assert.equal(await depth(), 0);
    // Each of these sends its first message only: what would not fit later is the worker's to
    // check, as Celery's client leaves it (the parent's result is one more argument by then).
    await chain(s(1), s(2)).delay(5);
    await chain(s(1, 2), s(1, 2)).delay();
    await chain(s(1, 2), one(1)).delay();
    await chain(s(1, 2), si(1)).delay();
    await chain(s(1, 2), group([s(1), s()])).delay();
    await chord([s(1, 2)], s()).delay();
    await chord([s(1, 2)], s(1, 2)).delay();
    await chain(s(1, 2), chord([s(1, 2, 3)], tsum.s())).delay();
    await s(1, 2).link(one(1, 2)).onError(one(1, 2)).delay();
    await chord([], tsum.s()).delay();
    assert.equal(await depth(), 10);
  });
});

Deno.test("canvas arity: typing: false and tasks not defined here are sent unchecked", async () => {
  await withApp(async (app, depth) => {
    const { s } = define(app);
    const lax = app.task("tasks.lax", { typing: false }, (a: number, b: number) => a + b);
    const remote = app.remoteTask<[number, number], number>("tasks.remote_add");
    const bound = app.task("tasks.bound", { bind: true }, (_ctx, a: number) => a);
    await loose(lax)(1).delay();
    await loose(remote)(1).delay();
    await app.signature("py.add", [1]).delay();
    await group([loose(lax)(1), app.signature("py.add", [])]).delay();
    await loose(bound)(1).delay();
    assert.equal(await depth(), 6);
    assert.equal(
      (await refusal(group([s(1, 2), loose(bound)()]).delay())).reason,
      "bound() missing 1 required positional argument: 'a'",
    );
    assert.equal(await depth(), 6);
  });
});

Deno.test({
  name: "canvas arity: refused and sent canvases are Celery's, with its TypeError",
  ignore: WITHOUT_CELERY,
}, async () => {
  // Each canvas: Celery 5.2.6's TypeError at the caller, or the messages it sends (task, args).
  const script = `
import json
from celery import Celery, chain, chord, group
from celery.signals import before_task_publish
app = Celery("t", broker="memory://", backend="cache+memory://")
sent = []
@before_task_publish.connect
def rec(sender=None, body=None, **kw):
    sent.append([sender, list(body[0])])
@app.task(name="tasks.add")
def add(a, b): return a + b
@app.task(name="tasks.one")
def one(a): return a
@app.task(name="tasks.tsum")
def tsum(xs): return sum(xs)
s, si = add.s, add.si
cases = [
    lambda: s(1).delay(), lambda: s(1).delay(2), lambda: si(1).delay(2),
    lambda: s(1, 2, 3).delay(), lambda: group(s(1, 2), s(1)).delay(),
    lambda: group(s(1), s(2)).delay(5), lambda: chain(s(1), s(2)).delay(),
    lambda: chain(s(1), s(2)).delay(5), lambda: chain(s(1, 2), one.s(1)).delay(),
    lambda: chain(s(1, 2), si(1)).delay(), lambda: chord([s(1, 2), s(1)], tsum.s()).delay(),
    lambda: chord([s(1, 2)], s(1, 2)).delay(), lambda: chord([], s()).delay(),
    lambda: chord([], tsum.s()).delay(), lambda: chord([s(1)], tsum.s()).delay(2),
]
out = []
for case in cases:
    sent.clear()
    try:
        case()
        out.append({"sent": list(sent)})
    except TypeError as e:
        out.append({"error": str(e)})
print(json.dumps(out))
`;
  const py = await new Deno.Command(PYTHON, { args: ["-c", script] }).output();
  assert.ok(py.success, new TextDecoder().decode(py.stderr));
  const fromCelery = JSON.parse(new TextDecoder().decode(py.stdout));
  await withApp(async (app) => {
    const { s, si, one, tsum } = define(app);
    const cases: (() => Promise<unknown>)[] = [
      () => s(1).delay(),
      () => s(1).delay(2),
      () => si(1).delay(2),
      () => s(1, 2, 3).delay(),
      () => group([s(1, 2), s(1)]).delay(),
      () => group([s(1), s(2)]).delay(5),
      () => chain(s(1), s(2)).delay(),
      () => chain(s(1), s(2)).delay(5),
      () => chain(s(1, 2), one(1)).delay(),
      () => chain(s(1, 2), si(1)).delay(),
      () => chord([s(1, 2), s(1)], tsum.s()).delay(),
      () => chord([s(1, 2)], s(1, 2)).delay(),
      () => chord([], s()).delay(),
      () => chord([], tsum.s()).delay(),
      () => chord([s(1)], tsum.s()).delay(2),
    ];
    const broker = await app.broker();
    const ours = [];
    for (const c of cases) {
      const err = await c().then(() => null, (e) => e);
      if (err !== null) {
        assert.ok(err instanceof TaskArgumentsError, String(err));
        ours.push({ error: err.reason });
        continue;
      }
      const taken = await broker.take([app.config.defaultQueue], { max: 100 });
      await broker.ack(taken);
      const sent = taken.map((
        m,
      ) => [m.headers.task, JSON.parse(new TextDecoder().decode(m.body))[0]]);
      ours.push({ sent });
    }
    // Celery sends the members before a refused one; only the error is compared there.
    assert.deepEqual(
      ours,
      fromCelery.map((c: { error?: string }) => c.error ? { error: c.error } : c),
    );
  });
});
