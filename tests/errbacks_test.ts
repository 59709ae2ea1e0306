/**
 * Which `link_error` errbacks a worker calls in-process: Celery 5.2's rule
 * (an unbound task of its own taking more than one positional argument, or
 * a rest parameter), and how they are called.
 */

import assert from "node:assert/strict";
import { Celery, type ErrbackRequest } from "../mod.ts";
import { callErrbacks, splitErrbacks } from "../src/worker/errbacks.ts";

const app = new Celery({ broker: "kv://:memory:" });
const calls: unknown[][] = [];
app.task("eb.one", (_id: string) => {});
app.task("eb.two", (a: unknown, b: unknown) => calls.push([a, b]));
app.task("eb.rest", (...args: unknown[]) => calls.push(args));
app.task("eb.old", (request: ErrbackRequest, exc: unknown, tb: string, note: string) => {
  calls.push([request.id, (exc as Error).message, typeof tb, note]);
});
app.task("eb.bound", { bind: true }, (_ctx, _a: unknown, _b: unknown, _c: unknown) => {});
app.task("eb.throws", (_r: unknown, _e: unknown, _t: unknown) => {
  throw new Error("errback broke");
});

const sig = (task: string, args: unknown[] = [], more: Record<string, unknown> = {}) => ({
  task,
  args,
  kwargs: {},
  options: {},
  subtask_type: null,
  immutable: false,
  ...more,
});
const tasks = app.tasks as ReadonlyMap<string, never>;

Deno.test("errbacks: more than one parameter, or a rest one, of an unbound task of the worker's: in-process", () => {
  const all = [
    sig("eb.one"),
    sig("eb.two"),
    sig("eb.rest"),
    sig("eb.old", ["x"]),
    sig("eb.bound"),
    sig("py.elsewhere"),
    sig("eb.two", [], { subtask_type: "chain" }),
  ];
  const { local, sent } = splitErrbacks(tasks, all);
  assert.deepEqual(local.map((l) => l.sig.task), ["eb.two", "eb.rest", "eb.old"]);
  assert.deepEqual(sent?.map((s) => s.task), ["eb.one", "eb.bound", "py.elsewhere", "eb.two"]);
  assert.equal(splitErrbacks(tasks, [sig("eb.two")]).sent, null);
});

Deno.test("errbacks: called with (request, exc, traceback, ...args), an immutable one with its own; one that throws (or does not fit) does not stop the rest", async () => {
  calls.length = 0;
  const { local } = splitErrbacks(tasks, [
    sig("eb.throws"),
    sig("eb.two", [1]),
    sig("eb.old", ["note"]),
    sig("eb.two", [1, 2], { immutable: true }),
  ]);
  const request = { id: "t-1", name: "t.fail" } as ErrbackRequest;
  await callErrbacks(local, request, new Error("boom"), "Traceback ...", (_t, args) => args);
  // eb.two(a, b) given (request, exc, traceback, 1): Python's TypeError (logged), not a call.
  assert.deepEqual(calls, [["t-1", "boom", "string", "note"], [1, 2]]);
});
