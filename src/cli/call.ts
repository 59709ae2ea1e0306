// deno-lint-ignore-file no-console
/**
 * `call` and `result`: send a task by name and print its id; print a
 * task's result (or failure).
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { closestName } from "../client/closest_name.ts";
import { BUILTIN_TASKS } from "../worker/builtins.ts";
import { unfitReason } from "../client/arity.ts";
import { BrokerConnectionError, maskPassword } from "../broker/errors.ts";
import { defaultBroker, privateBroker } from "./inspect.ts";
import { printOutcome, waitTimeout } from "./task_outcome.ts";
import { UsageError } from "./exit_codes.ts";
import { callSend } from "./call_options.ts";

/**
 * A warning for a task name the `--app` module does not register (with
 * the closest name it does), else `undefined`. The task is sent or stored
 * all the same: a Python worker, or one of another app, may serve it.
 * Without `--app` there is no registry to compare with.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * unregisteredTask(app, "tasks.addd", "./tasks.ts", "sent");
 * // "warning: tasks.addd is not a task of ./tasks.ts (did you mean tasks.add?); sent anyway, …"
 * ```
 *
 * @param app the app loaded from `appSpec`
 * @param name the task name given
 * @param appSpec the `--app` value, if any
 * @param done what is done with it anyway: "sent" or "stored"
 * @returns the warning line, or `undefined`
 */
export function unregisteredTask(
  app: Celery,
  name: string,
  appSpec: string | undefined,
  done: "sent" | "stored",
): string | undefined {
  if (!appSpec || BUILTIN_TASKS.includes(name)) return undefined;
  const names = knownTasks(app);
  if (names.includes(name)) return undefined;
  const guess = closestName(name, names);
  return `warning: ${name} is not a task of ${appSpec}${
    guess ? ` (did you mean ${guess}?)` : ""
  }; ${done} anyway, for a worker that has it (a Python worker, another app)`;
}

/**
 * A warning for a call the `--app` module's definition of the task cannot
 * take (keyword arguments to a handler that declares no `params` and is not
 * bound, a keyword it does not name, positional arguments too many or
 * missing): a worker of that app fails it with that `TypeError`, which the
 * warning quotes; else `undefined`. The task is sent all the same, as
 * Celery's `celery call` sends it unchecked: a worker of another app, or a
 * Python worker, may take it.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("tasks.add", (a: number, b: number) => a + b);
 * unfitCall(app, "tasks.add", [], { a: 1, b: 2 }, "./tasks.ts");
 * // "warning: tasks.add of ./tasks.ts cannot take this call: TypeError: tasks.add() got …"
 * ```
 *
 * @param app the app loaded from `appSpec`
 * @param name the task name given
 * @param args the positional arguments sent
 * @param kwargs the keyword arguments sent
 * @param appSpec the `--app` value, if any
 * @returns the warning line, or `undefined`
 */
export function unfitCall(
  app: Celery,
  name: string,
  args: unknown[],
  kwargs: Record<string, unknown>,
  appSpec: string | undefined,
): string | undefined {
  const task = appSpec ? app.tasks.get(name) : undefined;
  const reason = task && unfitReason(task, args, kwargs);
  if (reason === undefined) return undefined;
  return `warning: ${name} of ${appSpec} cannot take this call: TypeError: ${reason}; ` +
    "sent anyway (a worker of that app fails it with this error), for a worker whose " +
    `${name} takes it`;
}

/** The flags that only go with `call --wait`. */
const WAIT_FLAGS = ["timeout", "json", "traceback"];

/**
 * `call NAME [-a JSON] [-k JSON] [--countdown S] [--eta ISO] [--expires S|ISO]
 * [--serializer json|msgpack] [--queue Q] [--exchange E --routing-key K]
 * [--wait [-t S] [--json] [--traceback]]` (see call_options.ts): send the task, print
 * its id; with `--wait`, wait for its outcome and print it as `result`
 * does, with its exit codes (see task_outcome.ts) — the one way to get a
 * result from the `rpc://` backend, which sends it to this command alone.
 * Without `-t`, the 10 s wait starts when the task is due (`--countdown`,
 * `--eta`); a `-t` given counts from the send.
 *
 * @param app the app
 * @param name task name
 * @param values parsed flags
 * @returns exit code
 * @throws {UsageError} for a bad flag value, `--wait` without a result backend, or a wait flag
 *   without `--wait` (checked before anything is sent)
 */
export async function runCall(
  app: Celery,
  name: string | undefined,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  if (!name) throw new UsageError("call needs a task name: call tasks.add --args '[2, 3]'");
  const { args, options } = callSend(values);
  const { countdown, eta } = options;
  // The default wait starts when the task is due; an explicit -t counts from the send.
  const due = values.timeout === undefined
    ? Math.max(0, countdown ?? (eta ? (eta.getTime() - Date.now()) / 1000 : 0))
    : 0;
  const timeout = values.wait ? waitTimeout(values) + due : undefined;
  if (values.wait && !app.config.backend) {
    throw new UsageError(
      "call --wait needs the result backend the worker stores to, and none is configured: " +
        "--backend redis://127.0.0.1:6379/0, or rpc:// (or CELERY_RESULT_BACKEND, or the app's " +
        "backend); nothing was sent",
    );
  }
  const stray = WAIT_FLAGS.filter((f) => values[f] !== undefined);
  if (!values.wait && stray.length) {
    throw new UsageError(
      `${stray.map((f) => `--${f}`).join(", ")} ${stray.length > 1 ? "go" : "goes"} with ` +
        `--wait (call ${name} --wait --timeout 30); nothing was sent`,
    );
  }
  const unknown = unregisteredTask(app, name, values.app as string | undefined, "sent");
  const unfit = unfitCall(
    app,
    name,
    args,
    options.kwargs,
    values.app as string | undefined,
  );
  const r = await app.sendTask(name, args, options).catch((err) => {
    throw cliPublishError(err, values.broker !== undefined);
  });
  if (!values.json) console.log(r.id);
  if (unknown) console.error(unknown);
  if (unfit) console.error(unfit);
  const alone = privateBroker(app.config.broker);
  if (alone) console.error(`warning: no worker in another process can take ${r.id}: ${alone}`);
  const unnamed = defaultBroker(app.config.broker, values, `warning: sent ${r.id} to`);
  if (unnamed) console.error(unnamed);
  if (timeout !== undefined && app.tasks.get(name)?.options.ignoreResult) {
    console.error(
      `warning: ${name} is defined with ignoreResult: a worker stores no result of it, so ` +
        `--wait ends at the timeout (${timeout} s)` +
        (app.tasks.get(name)?.options.storeErrorsEvenIfIgnored ? " unless the task fails" : ""),
    );
  }
  if (timeout === undefined) {
    const lost = rpcResultLost(app, r.id);
    if (lost) console.error(lost);
    return 0;
  }
  return await printOutcome(r, {
    timeout,
    json: values.json === true,
    traceback: values.traceback === true,
    later: isRpc(app) ? "" : `; it may still finish: result ${r.id}`,
    results: isRpc(app) ? undefined : maskPassword(app.config.backend ?? ""),
  });
}

/**
 * A publish that gave up on a broker down (marked by its `publishTries`),
 * with advice for the command line: the library's hint (a longer
 * `taskPublishRetryPolicy`) is an app setting a `call` user cannot change,
 * and its source names the app's option for `-b`.
 *
 * @example
 * ```ts
 * import { BrokerConnectionError } from "@celeriac/celeriac";
 * const err = new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("refused"), {
 *   publishTries: 4,
 * });
 * (cliPublishError(err, true) as Error).message;
 * // "Cannot connect to redis://…: …. Check that the broker runs and the URL is right, then run
 * // call again (set by the command line's -b/--broker)"
 * ```
 *
 * @param err what the send rejected with
 * @param flagged whether the broker URL came from `-b`/`--broker`
 * @returns the error to throw: `err` itself unless it is a publish that gave up
 */
export function cliPublishError(err: unknown, flagged: boolean): unknown {
  if (!(err instanceof BrokerConnectionError) || err.publishTries === undefined) return err;
  return new BrokerConnectionError(err.url, err.cause, {
    reason: err.reason,
    hint: "Check that the broker runs and the URL is right, then run call again",
    transient: err.transient,
    source: flagged ? "the command line's -b/--broker" : err.source,
    publishTries: err.publishTries,
  });
}

function isRpc(app: Celery): boolean {
  return /^rpc:/i.test(app.config.backend ?? "");
}

/**
 * A warning for `call` with the `rpc://` backend: the worker sends the
 * result to the reply queue of the process that sent the task (this one,
 * which exits now), so nothing can read it later; else `undefined`.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * rpcResultLost(app, "5c0e4e3a-…");
 * // "warning: the result backend is rpc://: the result of 5c0e4e3a-… goes only to …"
 * ```
 *
 * @param app the app the task was sent with
 * @param id the task's id
 * @returns the warning line, or `undefined`
 */
export function rpcResultLost(app: Celery, id: string): string | undefined {
  if (!isRpc(app)) return undefined;
  return `warning: the result backend is rpc://: the result of ${id} goes only to this ` +
    "command's own reply queue, which is gone when it exits, so nothing can read it later " +
    "(`result` refuses rpc://). To get it, have this command wait for it: call … --wait " +
    "(--timeout S, default 10). To read results later, store them where any process can: " +
    "--backend redis://127.0.0.1:6379/0 (or CELERY_RESULT_BACKEND) for the worker and the " +
    "caller";
}

/**
 * `result`'s flags with Celery's `-t/--task NAME` read: a `-t` followed by
 * what is not a number is the task name (`result -t tasks.add ID`, as a
 * Celery user types it), and `--timeout` what it is elsewhere otherwise;
 * `--timeout` spelled out is always the timeout.
 *
 * @example
 * ```ts ignore
 * resultTaskFlag({ timeout: "5" }, [
 *   { name: "timeout", rawName: "-t", value: "tasks.add" },
 *   { name: "timeout", rawName: "--timeout", value: "5" },
 * ]);
 * // { task: "tasks.add", timeout: "5" }
 * ```
 *
 * @param values parsed flags
 * @param given the option tokens, for how each `-t/--timeout` was written
 *   (parseArgs keeps only the last value of a repeated option: `-t NAME
 *   --timeout 5` would otherwise lose the name)
 * @returns the flags, `-t NAME` moved to `task`
 */
export function resultTaskFlag(
  values: Record<string, string | boolean | undefined>,
  given: readonly { name: string; rawName: string; value?: string }[],
): Record<string, string | boolean | undefined> {
  let task = values.task;
  let timeout: string | undefined;
  let named = false;
  for (const t of given) {
    if (t.name !== "timeout" || typeof t.value !== "string") continue;
    if (t.rawName === "-t" && !/^\s*[-+.\d]/.test(t.value)) {
      task ??= t.value;
      named = true;
    } else timeout = t.value;
  }
  return named ? { ...values, task, timeout } : values;
}

/**
 * The task names the app knows: those with a handler and those declared
 * with `app.remoteTask` (none from an app made by another copy of Celeriac
 * that has no `remoteTaskNames`).
 */
function knownTasks(app: Celery): string[] {
  return [...app.tasks.keys(), ...(app.remoteTaskNames ?? [])];
}

/**
 * Check `result --task NAME` (Celery's, for a task with a backend of its
 * own) against the app's tasks when it has any (those declared with
 * `app.remoteTask` included), as Celery refuses a name it
 * does not register; the result is read the same either way, Celeriac's
 * tasks having no backend of their own.
 *
 * @param app the app
 * @param task the name given
 * @throws {UsageError} for a task name the app's tasks do not have
 */
function checkResultTask(app: Celery, task: string | boolean | undefined): void {
  if (typeof task !== "string") return;
  const names = knownTasks(app);
  if (names.length === 0 || names.includes(task)) return;
  throw new UsageError(
    `result -t/--task ${task}: the app has no such task (it has ${names.join(", ")}); ` +
      "-t followed by a number is the timeout in seconds",
  );
}

/**
 * `result ID [-t/--task NAME] [--traceback] [--timeout S] [--json]`: wait for the task's
 * result and print it as JSON; a failure prints its exception and exits 1;
 * no result within the timeout exits 3 (see task_outcome.ts). With `--traceback`
 * (and no `--json`), as Celery 5.2.6, no wait: the traceback stored now, on stdout, and exit 0
 * (an empty line for a task that has none: pending, unknown, started, succeeded). An `rpc://`
 * backend is refused: its results reach only the client that sent the task (`call --wait`
 * waits for them).
 *
 * @param app the app
 * @param id task id
 * @param values parsed flags
 * @returns exit code
 * @throws {UsageError} without an id, without a result backend, with an `rpc://` one, or a
 *   `--timeout` that is no number of seconds > 0
 */
export async function runResult(
  app: Celery,
  id: string | undefined,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  if (!id) throw new UsageError("result needs a task id: result 5c0e4e3a-…");
  if (!app.config.backend) {
    throw new UsageError(
      "result needs the result backend the worker stores to, and none is configured: " +
        "--backend redis://127.0.0.1:6379/0 (or CELERY_RESULT_BACKEND, or the app's backend)",
    );
  }
  if (isRpc(app)) {
    throw new UsageError(
      "result cannot read a result from the rpc:// backend: it sends each result only to the " +
        "client that sent the task (as in Celery): send it with call … --wait to get it there. " +
        "Store results where any process can read them: --backend redis://127.0.0.1:6379/0 " +
        "(or CELERY_RESULT_BACKEND) for the worker and the caller",
    );
  }
  checkResultTask(app, values.task);
  const timeout = waitTimeout(values);
  const json = values.json === true;
  if (values.traceback === true && !json) {
    console.log((await app.asyncResult(id).info())?.traceback ?? "");
    return 0;
  }
  return await printOutcome(app.asyncResult(id), {
    timeout,
    json,
    results: maskPassword(app.config.backend),
  });
}
