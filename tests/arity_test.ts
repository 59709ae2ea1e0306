/**
 * Argument-count checks: a call with too few or too many arguments fails
 * with Python's `TypeError` text, as a Celery task does — the same message
 * a Python worker gives for the same call from a Python client.
 */

import assert from "node:assert/strict";
import { checkArity, checkCall, handlerSignature } from "../src/client/arity.ts";
import { interopWorker, type PyOutcome, pythonCalls } from "./helpers/interop.ts";
import { celeryWorker } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

function message(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TypeError);
    return err.message;
  }
  return "(no error)";
}

Deno.test("arity: handler signatures from arrows, functions, defaults, rest and bound tasks", () => {
  const sig = (f: (...a: never[]) => unknown, o: { bind?: boolean; params?: string[] } = {}) =>
    handlerSignature(f, o, "tasks.some_task");
  assert.deepEqual(sig((a: number, b: number) => a + b), {
    name: "some_task",
    names: ["a", "b"],
    required: 2,
    max: 2,
  });
  function add(x: number, y = 2) {
    return x + y;
  }
  assert.deepEqual(sig(add), { name: "add", names: ["x", "y"], required: 1, max: 2 });
  assert.equal(sig((...rest: unknown[]) => rest).max, Infinity);
  assert.deepEqual(sig(async (x: string) => await x), {
    name: "some_task",
    names: ["x"],
    required: 1,
    max: 1,
  });
  // deno-fmt-ignore
  const single = ((x: unknown) => x) as (...a: never[]) => unknown;
  assert.equal(sig(single).max, 1);
  const tricky = (
    { a, b }: { a: number; b: number }, // a comment, with a comma
    s = "x, y",
    t = [1, 2],
  ) => [a, b, s, t];
  assert.deepEqual(sig(tricky), {
    name: "tricky",
    names: ["arg1", "s", "t"],
    required: 1,
    max: 3,
  });
  assert.deepEqual(sig((_ctx: unknown, url: string) => url, { bind: true }), {
    name: "some_task",
    names: ["url"],
    required: 1,
    max: 1,
  });
  assert.deepEqual(sig((x: number, y: number) => x * y, { params: ["left", "right"] }).names, [
    "left",
    "right",
  ]);
});

Deno.test("arity: Python's TypeError messages", () => {
  const add = handlerSignature((a: number, b: number) => a + b, {}, "tasks.add");
  assert.equal(
    message(() => checkArity(add, [1], 1)),
    "add() missing 1 required positional argument: 'b'",
  );
  assert.equal(
    message(() => checkArity(add, [], 0)),
    "add() missing 2 required positional arguments: 'a' and 'b'",
  );
  assert.equal(
    message(() => checkArity(add, [1, 2, 3], 3)),
    "add() takes 2 positional arguments but 3 were given",
  );
  const three = handlerSignature((a: number, b: number, c: number) => a + b + c, {}, "t.k");
  assert.equal(
    message(() => checkArity(three, [], 0)),
    "k() missing 3 required positional arguments: 'a', 'b', and 'c'",
  );
  const none = handlerSignature(() => 1, {}, "t.h");
  assert.equal(
    message(() => checkArity(none, [1], 1)),
    "h() takes 0 positional arguments but 1 was given",
  );
  const greet = handlerSignature((name: string, greeting = "hi") => greeting + name, {}, "t.greet");
  assert.equal(
    message(() => checkArity(greet, [1, 2, 3], 3)),
    "greet() takes from 1 to 2 positional arguments but 3 were given",
  );
  assert.equal(
    message(() => checkArity(greet, ["x"], 1)),
    "(no error)",
    "defaults may be left out",
  );
  const rest = handlerSignature((...a: unknown[]) => a, {}, "t.echo");
  assert.equal(message(() => checkArity(rest, Array(50).fill(0), 50)), "(no error)");
});

Deno.test("arity: keyword arguments placed by params count; a bound task's ctx.kwargs do not", () => {
  const mul = {
    name: "tasks.mul",
    handler: [(x: number, y: number) => x * y][0], // unnamed, as when passed to app.task()
    options: { params: ["x", "y"] },
  };
  const args: unknown[] = [6];
  args[1] = 7;
  assert.equal(message(() => checkCall(mul, { args: [6], kwargs: { y: 7 } }, args)), "(no error)");
  const holes: unknown[] = [];
  holes[1] = 7;
  assert.equal(
    message(() => checkCall(mul, { args: [], kwargs: { y: 7 } }, holes)),
    "mul() missing 1 required positional argument: 'x'",
  );
  const bound = {
    name: "t.b",
    handler: [(_ctx: unknown, x: number) => x][0],
    options: { bind: true },
  };
  assert.equal(message(() => checkCall(bound, { args: [], kwargs: { x: 1 } }, [])), "(no error)");
  assert.equal(
    message(() => checkCall(bound, { args: [], kwargs: {} }, [])),
    "b() missing 1 required positional argument: 'x'",
  );
});

Deno.test({
  name:
    "arity: a Python client gets the same TypeError from a Celeriac worker as from a Python one",
  ignore: WITHOUT_CELERY,
}, async () => {
  const prefix = uniquePrefix("arity");
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const calls = [
    { task: "tasks.add", args: [1] },
    { task: "tasks.add", args: [1, 2, 3] },
    { task: "tasks.add", args: [] },
    { task: "tasks.add", args: [2, 3] },
    { task: "tasks.greet", args: ["ada"] },
    { task: "tasks.greet", args: ["ada", "hi", "extra"] },
    { task: "tasks.mul", args: [6], kwargs: { y: 7 } },
    { task: "tasks.mul", kwargs: { x: 6, z: 7 } },
    { task: "tasks.mul", args: [6], kwargs: { x: 7 } },
    { task: "tasks.mul", kwargs: { y: 7 } },
  ];
  const run = async (queue: string): Promise<PyOutcome[]> =>
    await pythonCalls({
      CELERY_BROKER_URL: REDIS_URL,
      CELERY_RESULT_BACKEND: REDIS_URL,
      INTEROP_KEYPREFIX: prefix,
      INTEROP_QUEUE: queue,
    }, calls);
  const tsQueue = `arity-ts-${crypto.randomUUID().slice(0, 8)}`;
  const pyQueue = `arity-py-${crypto.randomUUID().slice(0, 8)}`;
  const ts = await interopWorker({ broker, backend: REDIS_URL }, tsQueue);
  const py = await celeryWorker(["-P", "solo", "-Q", pyQueue], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: pyQueue,
  });
  const ids: string[] = [];
  try {
    const [fromTs, fromPy] = await Promise.all([run(tsQueue), run(pyQueue)]);
    ids.push(...fromTs.map((o) => o.id), ...fromPy.map((o) => o.id));
    const strip = (o: PyOutcome) => ({ ok: o.ok, error: o.error });
    assert.deepEqual(fromTs.map(strip), fromPy.map(strip));
    assert.deepEqual(fromTs[0].error, {
      type: "TypeError",
      module: "builtins",
      args: ["add() missing 1 required positional argument: 'b'"],
    });
    assert.equal(fromTs[1].error?.args[0], "add() takes 2 positional arguments but 3 were given");
    assert.equal(fromTs[3].ok, 5);
    assert.equal(fromTs[4].ok, "hello, ada");
    assert.equal(fromTs[6].ok, 42);
    assert.equal(fromTs[7].error?.args[0], "mul() got an unexpected keyword argument 'z'");
    assert.equal(fromTs[8].error?.args[0], "mul() got multiple values for argument 'x'");
    assert.equal(fromTs[9].error?.args[0], "mul() missing 1 required positional argument: 'x'");
  } finally {
    await Promise.all([ts.stop(), py.stop()]);
    await deleteResults(ids);
    await deleteKeys(prefix);
  }
});
