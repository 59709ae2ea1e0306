/**
 * Tasks for the workflow example (examples/workflows.ts). A worker serves
 * them with `deno run -A worker.ts --app ./examples/workflow_tasks.ts`.
 */

import { Celery, type ErrbackRequest } from "../mod.ts";

export const app = new Celery();

/** Adds two numbers. */
export const add = app.task("flow.add", (a: number, b: number) => a + b);
/** Multiplies two numbers. */
export const mul = app.task("flow.mul", (a: number, b: number) => a * b);
/** Sums a list: a chord body receives the list of its header's results. */
export const tsum = app.task("flow.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
/** Formats a number. */
export const show = app.task("flow.show", (n: number, unit: string) => `${n} ${unit}`);
/** Fails on purpose: a chord with it in its header fails with ChordError. */
export const fail = app.task("flow.fail", (why: string): never => {
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});
/**
 * A one-argument errback (`link_error`): sent as a task with the failed
 * task's id, so any worker that defines it runs it.
 */
export const noteFailure = app.task("flow.note_failure", (taskId: string) => `noted ${taskId}`);
/**
 * An old-style errback, Celery's `(request, exc, traceback)`: the worker
 * whose task failed calls it in-process (no message) once the FAILURE is
 * stored; its own arguments (here `channel`) come after the three.
 */
export const alert = app.task(
  "flow.alert",
  (request: ErrbackRequest, exc: unknown, _traceback: string | null, channel: string) => {
    // deno-lint-ignore no-console
    console.log(`  ${channel}: ${request.name}(${request.args.join(", ")}) raised ${exc}`);
  },
);
