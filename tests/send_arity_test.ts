/**
 * `delay()`, `applyAsync()` and `delayMany()` of a task defined in the
 * program refuse a call its handler cannot take before anything is sent,
 * as Celery's `apply_async` raises `TypeError` at the caller (`Task.typing`,
 * on by default): the worker would only fail it with that `TypeError`.
 * `typing: false` and remote tasks send unchecked.
 */

import assert from "node:assert/strict";
import { TaskArgumentsError } from "../mod.ts";
import { exceptionInfo } from "../protocol.ts";
import { PYTHON } from "./helpers/procs.ts";
import { refusal, withMemoryApp as withApp } from "./helpers/refusals.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

/** A task handle called with arguments its type does not allow, as `deno run` lets a program do. */
type Loose = {
  delay(...args: unknown[]): Promise<unknown>;
  applyAsync(args: unknown[], options?: { kwargs?: Record<string, unknown> }): Promise<unknown>;
  delayMany(list: unknown[][], options?: { kwargs?: Record<string, unknown> }): Promise<unknown>;
};
const loose = (t: unknown) => t as Loose;

Deno.test("send arity: delay() with arguments missing or too many is refused, nothing sent", async () => {
  await withApp(async (app, depth) => {
    const add = app.task("tasks.add", (a: number, b: number) => a + b);
    // Before: both were sent and the worker failed them with TypeError.
    const few = await refusal(loose(add).delay(1));
    assert.ok(few instanceof TypeError);
    assert.equal(few.name, "TaskArgumentsError");
    assert.equal(few.code, "TASK_ARGUMENTS");
    assert.equal(few.task, "tasks.add");
    assert.equal(few.index, undefined);
    assert.equal(few.reason, "add() missing 1 required positional argument: 'b'");
    assert.match(
      few.message,
      /^tasks\.add cannot take this call, so nothing was sent: add\(\) missing 1 required .*'b'\. Pass the arguments its handler takes, or define tasks\.add with \{ typing: false \}/,
    );
    const many = await refusal(loose(add).delay(1, 2, 3));
    assert.equal(many.reason, "add() takes 2 positional arguments but 3 were given");
    assert.equal(await depth(), 0);
    await add.delay(1, 2);
    assert.equal(await depth(), 1);
  });
});

Deno.test("send arity: applyAsync() with keywords its handler does not take is refused", async () => {
  await withApp(async (app, depth) => {
    const add = app.task("tasks.add", (a: number, b: number) => a + b);
    const mul = app.task("tasks.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);
    const unnamed = await refusal(add.applyAsync([1, 2], { kwargs: { c: 3 } }));
    assert.match(unnamed.reason, /^tasks\.add\(\) got keyword argument\(s\) c, but its handler/);
    const z = await refusal(mul.applyAsync([] as never, { kwargs: { x: 1, z: 2 } }));
    assert.equal(z.reason, "mul() got an unexpected keyword argument 'z'");
    const twice = await refusal(mul.applyAsync([1] as never, { kwargs: { x: 2 } }));
    assert.equal(twice.reason, "mul() got multiple values for argument 'x'");
    assert.equal(await depth(), 0);
    await mul.applyAsync([2] as never, { kwargs: { y: 3 } });
    await mul.applyAsync([] as never, { kwargs: { x: 2, y: 3 } });
    assert.equal(await depth(), 2);
  });
});

Deno.test("send arity: delayMany() refuses the whole batch for one unfit call, naming it", async () => {
  await withApp(async (app, depth) => {
    const add = app.task("tasks.add", (a: number, b: number) => a + b);
    const err = await refusal(loose(add).delayMany([[1, 2], [3, 4], [5]]));
    assert.equal(err.index, 2);
    assert.match(
      err.message,
      /^tasks\.add cannot take the call argsList\[2\], so nothing was sent/,
    );
    const kw = await refusal(loose(add).delayMany([[1, 2]], { kwargs: { c: 1 } }));
    assert.equal(kw.index, 0);
    assert.equal(await depth(), 0);
    await add.delayMany([[1, 2], [3, 4]]);
    assert.equal(await depth(), 2);
  });
});

Deno.test("send arity: typing: false and remote tasks send unchecked", async () => {
  await withApp(async (app, depth) => {
    const unchecked = app.task("tasks.lax", { typing: false }, (a: number, b: number) => a + b);
    const remote = app.remoteTask<[number, number], number>("tasks.add");
    await loose(unchecked).delay(1);
    await loose(unchecked).applyAsync([1, 2], { kwargs: { c: 3 } });
    await loose(unchecked).delayMany([[1]]);
    await loose(remote).delay(1);
    await loose(remote).applyAsync([], { kwargs: { c: 3 } });
    assert.equal(await depth(), 5);
    assert.throws(
      () => app.task("tasks.bad", { typing: "no" } as never, () => 1),
      /typing must be true or false/,
    );
  });
});

Deno.test("send arity: rest parameters, defaults and ctx.kwargs take what Celery's would", async () => {
  await withApp(async (app, depth) => {
    // def rest(*args), def greet(name, greeting="hello"), bind=True with **kwargs read from ctx.
    const rest = app.task("tasks.rest", (...xs: number[]) => xs.length);
    const greet = app.task("tasks.greet", (name: string, greeting = "hello") => greeting + name);
    const bound = app.task("tasks.bound", { bind: true }, (ctx, x: number) => [x, ctx.kwargs]);
    await loose(rest).delay();
    await loose(rest).delay(1, 2, 3, 4);
    await greet.delay("ada");
    await greet.delay("ada", "hi");
    await loose(bound).applyAsync([1], { kwargs: { tenant: "a" } });
    assert.equal(await depth(), 5);
    assert.equal(
      (await refusal(loose(greet).delay("a", "b", "c"))).reason,
      "greet() takes from 1 to 2 positional arguments but 3 were given",
    );
    assert.equal(
      (await refusal(loose(greet).delay())).reason,
      "greet() missing 1 required positional argument: 'name'",
    );
    assert.equal(
      (await refusal(loose(bound).delay())).reason,
      "bound() missing 1 required positional argument: 'x'",
    );
    assert.equal(await depth(), 5);
  });
});

Deno.test("send arity: a task that makes an unfit call fails with Python's TypeError", () => {
  const err = new TaskArgumentsError(
    "tasks.add",
    "add() missing 1 required positional argument: 'b'",
  );
  assert.deepEqual(exceptionInfo(err), {
    exc_type: "TypeError",
    exc_message: ["add() missing 1 required positional argument: 'b'"],
    exc_module: "builtins",
  });
});

Deno.test({
  name: "send arity: the reason is the TypeError Celery's apply_async raises at the caller",
  ignore: WITHOUT_CELERY,
}, async () => {
  const script = `
import json
from celery import Celery
app = Celery("t", broker="memory://")
@app.task
def add(a, b): return a + b
@app.task
def greet(name, greeting="hello"): return greeting
@app.task
def mul(x, y): return x * y
out = []
for f, args, kwargs in [(add, [1], {}), (add, [1, 2, 3], {}), (greet, ["a", "b", "c"], {}),
                        (greet, [], {}), (mul, [], {"x": 1, "z": 2}), (mul, [1], {"x": 2})]:
    try:
        f.apply_async(args, kwargs)
        out.append(None)
    except TypeError as e:
        out.append(str(e))
print(json.dumps(out))
`;
  const py = await new Deno.Command(PYTHON, { args: ["-c", script] }).output();
  assert.ok(py.success, new TextDecoder().decode(py.stderr));
  const fromCelery = JSON.parse(new TextDecoder().decode(py.stdout));
  await withApp(async (app) => {
    const add = app.task("tasks.add", (a: number, b: number) => a + b);
    const greet = app.task("tasks.greet", (name: string, greeting = "hello") => greeting + name);
    const mul = app.task("tasks.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);
    const calls: [Loose, unknown[], Record<string, unknown>][] = [
      [loose(add), [1], {}],
      [loose(add), [1, 2, 3], {}],
      [loose(greet), ["a", "b", "c"], {}],
      [loose(greet), [], {}],
      [loose(mul), [], { x: 1, z: 2 }],
      [loose(mul), [1], { x: 2 }],
    ];
    const ours = [];
    for (const [t, args, kwargs] of calls) {
      ours.push((await refusal(t.applyAsync(args, { kwargs }))).reason);
    }
    assert.deepEqual(ours, fromCelery);
  });
});
