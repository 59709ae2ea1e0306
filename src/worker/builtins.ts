/**
 * Celery's built-in tasks, so a Celeriac worker runs what Python sends:
 * `celery.map`, `celery.starmap` (and so `chunks`), `celery.chunks`,
 * `celery.group`, `celery.chord`, `celery.chain`, `celery.accumulate`,
 * `celery.chord_unlock`. The worker registers them in its app (in the main
 * thread and in every Web Worker) unless the app defines a task of the same
 * name.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { TaskContext } from "../client/task_options.ts";
import { chordSignature, groupSignature } from "../protocol/canvas_shape.ts";
import type { ResultBackend } from "../backend/port.ts";
import type { PublishTarget } from "../broker/port.ts";
import type { Task } from "../client/task.ts";
import type { Message, SignatureDict } from "../protocol/message.ts";
import { type ExceptionInfo, READY_STATES } from "../protocol/result_meta.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import {
  callbackError,
  chordError,
  decodeSignature,
  type ResultTuple,
  resultTupleFromJson,
  resultTupleToJson,
} from "../protocol/signature.ts";
import type { Parent } from "./follow_ups.ts";

/** Names of the built-in tasks. */
export const BUILTIN_TASKS: readonly string[] = [
  "celery.map",
  "celery.starmap",
  "celery.chunks",
  "celery.group",
  "celery.chord",
  "celery.chain",
  "celery.accumulate",
  "celery.chord_unlock",
];

/** Call a task of this app in-process with the signature's partial arguments, as Celery's `sig(*args)`. */
function callLocal(app: Celery, raw: unknown, args: unknown[], where: string): unknown {
  const sig = decodeSignature(raw, where);
  const task = app.tasks.get(sig.task);
  if (!task?.handler) {
    throw new TypeError(
      `${where}: task ${sig.task} is not defined in this worker's app; ${where} calls its task ` +
        "in-process, so it must run on a worker that defines it",
    );
  }
  if (task.options.bind) {
    throw new TypeError(`${where}: ${sig.task} is a bound task; map over an unbound task`);
  }
  const handler = task.handler as (...a: unknown[]) => unknown;
  return handler(...args, ...sig.args);
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`${what} must be a list`);
  return v;
}

async function mapAll(app: Celery, task: unknown, it: unknown, star: boolean): Promise<unknown[]> {
  const where = star ? "celery.starmap" : "celery.map";
  const out: unknown[] = [];
  for (const item of list(it, `${where} "it"`)) {
    const args = star ? list(item, `each ${where} item`) : [item];
    out.push(await callLocal(app, task, args, where));
  }
  return out;
}

function tupleJson(t: ResultTuple): unknown {
  return resultTupleToJson(t);
}

/**
 * Fail the body of a chord that `celery.chord_unlock` found failed (or
 * could not send), as
 * Celery's `chord_error_from_stack`: its FAILURE, its old-style errbacks
 * this worker defines called in-process, the others sent with its id
 * through the worker's connection (chord_failure.ts).
 */
async function failUnlockedChord(
  app: Celery,
  ctx: TaskContext,
  body: SignatureDict,
  exc: ExceptionInfo,
  backend: ResultBackend,
): Promise<void> {
  const io = {
    backend,
    tasks: app.tasks as ReadonlyMap<string, Task<never, unknown>>,
    hostname: ctx.hostname,
    publish: (message: Message, target: PublishTarget) => app.publish(message, target),
  };
  const parent: Parent = {
    id: ctx.id,
    rootId: ctx.rootId ?? ctx.id,
    origin: ctx.hostname,
    defaultQueue: app.config.defaultQueue,
    route: (task, args, kwargs, options) => app.routeSignature(task, args, kwargs, options),
  };
  const [{ publishAll }, { failChordBody }] = await loadChordFailure();
  await publishAll(await failChordBody(body, exc, io, parent), io);
}

/** The modules of {@link loadChordFailure}. */
type ChordFailureModules = [typeof import("./canvas_send.ts"), typeof import("./chord_failure.ts")];

/** {@link loadChordFailure}'s import, once made (cleared if it failed). */
let chordFailure: Promise<ChordFailureModules> | undefined;

/**
 * The modules that fail a chord's body for `celery.chord_unlock`, imported
 * on first use: a Web Worker that never runs that failure path does not load
 * them, nor LogTape with them (issue 13: each Web Worker's share of the
 * worker's memory). A sandboxed Web Worker loads them before it gives up its
 * read access, as it does its codecs.
 *
 * @example
 * ```ts ignore
 * const [{ publishAll }, { failChordBody }] = await loadChordFailure();
 * ```
 *
 * @returns `canvas_send.ts` and `chord_failure.ts`
 */
export function loadChordFailure(): Promise<ChordFailureModules> {
  // Kept once loaded: after a sandbox gave up its read access, no import is made again.
  return chordFailure ??= Promise.all([import("./canvas_send.ts"), import("./chord_failure.ts")])
    .catch((err) => {
      chordFailure = undefined;
      throw err;
    });
}

/**
 * Register Celery's built-in tasks on an app (those it does not define).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * registerBuiltins(app); // a Python `add.map([...])` now runs here
 * ```
 *
 * @param app the worker's app
 */
export function registerBuiltins(app: Celery): void {
  const define = (name: string, fn: () => void) => {
    if (!app.tasks.has(name)) fn();
  };
  define("celery.map", () =>
    app.task(
      "celery.map",
      { params: ["task", "it"] },
      (task: SignatureDict, it: unknown[]) => mapAll(app, task, it, false),
    ));
  define("celery.starmap", () =>
    app.task(
      "celery.starmap",
      { params: ["task", "it"] },
      (task: SignatureDict, it: unknown[]) => mapAll(app, task, it, true),
    ));
  define("celery.chunks", () =>
    app.task(
      "celery.chunks",
      { params: ["task", "it", "n"] },
      async (task: SignatureDict, it: unknown[], n: number) => {
        const parts: SignatureDict[] = [];
        for (let i = 0; i < it.length; i += n) {
          parts.push({
            task: "celery.starmap",
            args: [],
            kwargs: { task, it: it.slice(i, i + n) },
            options: {},
            subtask_type: "xstarmap",
            immutable: false,
          });
        }
        return tupleJson(await app.applyCanvas(groupSignature(parts)));
      },
    ));
  define("celery.group", () =>
    app.task(
      "celery.group",
      { params: ["tasks", "result", "group_id", "partial_args"] },
      async (tasks: SignatureDict[], _result?: unknown, gid?: string, partial?: unknown[]) => {
        const options = gid ? { task_id: gid } : {};
        return tupleJson(
          await app.applyCanvas(groupSignature(tasks, options), { args: partial ?? [] }),
        );
      },
    ));
  define("celery.chord", () =>
    app.task(
      "celery.chord",
      { bind: true },
      async (ctx: TaskContext, ...positional: unknown[]) => {
        const k = ctx.kwargs;
        const header = k.header ?? positional[0];
        const body = k.body ?? positional[1];
        const partial = (k.partial_args ?? positional[2] ?? []) as unknown[];
        const headerSig = Array.isArray(header)
          ? groupSignature(header as SignatureDict[])
          : decodeSignature(header, "celery.chord header");
        const tree = await app.applyCanvas(
          chordSignature(headerSig, decodeSignature(body, "celery.chord body")),
          { args: partial },
        );
        return tree.id;
      },
    ));
  define("celery.chain", () =>
    app.task("celery.chain", (): never => {
      const err = new Error("chain is not a real task");
      err.name = "NotImplementedError";
      throw err;
    }));
  define("celery.accumulate", () =>
    app.task(
      "celery.accumulate",
      { bind: true },
      (ctx: TaskContext, ...args: unknown[]) => {
        const index = ctx.kwargs.index;
        return typeof index === "number" ? args.at(index) : args;
      },
    ));
  define("celery.chord_unlock", () =>
    app.task(
      "celery.chord_unlock",
      { bind: true, maxRetries: null },
      async (ctx: TaskContext, groupId: string, callback: SignatureDict) => {
        const k = ctx.kwargs;
        const interval = typeof k.interval === "number" ? k.interval : 1;
        const backend = await app.resultBackend();
        let members: string[];
        if (k.result !== undefined && k.result !== null) {
          members = list(k.result, "celery.chord_unlock result").map((t) =>
            resultTupleFromJson(t).id
          );
        } else {
          const saved = await app.restoreGroup(groupId);
          if (!saved) throw new Error(`celery.chord_unlock: group ${groupId} is not saved`);
          members = saved.children.map((r) => r.id);
        }
        const metas = await Promise.all(members.map((id) => backend.get(id)));
        if (!metas.every((m) => m && READY_STATES.has(m.status))) {
          ctx.retry({
            countdown: interval,
            maxRetries: typeof k.max_retries === "number" ? k.max_retries : null,
          });
        }
        const body = decodeSignature(callback, "celery.chord_unlock callback");
        const failed = metas.findIndex((m) => m!.status !== "SUCCESS");
        if (failed >= 0) {
          const exc = chordError(members[failed], metas[failed]!.result as ExceptionInfo);
          await failUnlockedChord(app, ctx, body, exc, backend);
          return null;
        }
        try {
          await app.applyCanvas(body, { args: [metas.map((m) => m!.result)] });
        } catch (err) {
          // A body that cannot be sent fails as Celery's "Callback error", its errbacks called.
          await failUnlockedChord(app, ctx, body, callbackError(exceptionInfo(err)), backend);
        }
        return null;
      },
    ));
}
