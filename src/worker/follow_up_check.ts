/**
 * The argument check a Celery worker makes on what a succeeded task sends
 * next: its `link` callbacks and the next step of its chain go out with
 * `apply_async`, which checks each call it sends against the task's own
 * definition when the worker defines it (Celery's `Task.typing`). For a
 * canvas that is the calls it sends at once: a group's members, a chord's
 * header members (or its body, when the header is empty), a chain's first
 * step, with the result prepended as that canvas passes it on. A call that
 * does not fit raises `TypeError` before the task's result is stored, so the
 * task itself fails with it and that follow-up is not sent. The error is
 * raised outside the task's body, so `autoretryFor` does not re-run it
 * (Celery logs "Exception raised outside body").
 *
 * One difference remains: every follow-up is checked before any is sent, so
 * a misfit sends none of them, where Celery has already sent the callbacks
 * listed before it, and the members of a group or chord header before it.
 *
 * @module
 */

import type { Task } from "../client/task.ts";
import type { Embed, SignatureDict } from "../protocol/message.ts";
import { planCanvas } from "../protocol/canvas.ts";
import { fittedArgs, type PlaceArgs } from "../client/arity.ts";
import { BUILTIN_TASKS } from "./builtins.ts";

type Tasks = ReadonlyMap<string, Task<never, unknown>>;

/**
 * Throw Python's `TypeError` when a call among those `embed`'s callbacks or
 * its next chain step send at once (a plain task, or a canvas's members)
 * would reach a task defined in `tasks` with arguments its handler does not
 * take (the result first unless it is immutable). Tasks this worker does
 * not define, those defined with `typing: false` and Celery's built-in
 * tasks are not checked; nor is a chord's body (its join checks it) or a
 * malformed signature (it fails as a broken follow-up when sent).
 *
 * @example
 * ```ts ignore
 * checkFollowUps(app.tasks, body.embed, value, place); // throws for add.si() as a callback
 * ```
 *
 * @param tasks the worker's task registry
 * @param embed the succeeded task's embed
 * @param value its return value
 * @param place builds a handler's arguments from positional and keyword ones
 * @throws {TypeError} with Python's message
 */
export function checkFollowUps(
  tasks: Tasks,
  embed: Embed,
  value: unknown,
  place: PlaceArgs,
): void {
  for (const sig of embed.callbacks ?? []) check(tasks, sig, value, null, place);
  const chain = embed.chain;
  if (chain?.length) {
    const rest = chain.slice(0, -1);
    check(tasks, chain[chain.length - 1], value, rest.length ? rest : null, place);
  }
}

function check(
  tasks: Tasks,
  sig: SignatureDict,
  value: unknown,
  chain: readonly SignatureDict[] | null,
  place: PlaceArgs,
): void {
  if (!sig?.subtask_type) {
    checkCall(tasks, sig.task, sig.immutable ? sig.args : [value, ...sig.args], sig.kwargs, place);
    return;
  }
  let plan;
  try {
    plan = planCanvas(sig, { args: [value], chain });
  } catch {
    return;
  }
  for (const send of plan.sends) checkCall(tasks, send.task, send.args, send.kwargs, place);
}

function checkCall(
  tasks: Tasks,
  name: string,
  args: readonly unknown[],
  kwargs: Record<string, unknown> | undefined,
  place: PlaceArgs,
): void {
  if (BUILTIN_TASKS.includes(name)) return;
  const task = tasks.get(name);
  if (!task?.handler || task.options.typing === false) return;
  fittedArgs(task, [...args], kwargs ?? {}, place);
}
