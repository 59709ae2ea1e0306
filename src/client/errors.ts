/**
 * Errors a client catches when waiting for results, and
 * {@link taskErrorFromMeta}, which makes a stored failure one.
 *
 * @module
 */

import { REPR_MAXSIZE, resultRepr } from "../protocol/repr.ts";
import type { ExceptionInfo, ResultMeta, TaskState } from "../protocol/result_meta.ts";

/**
 * Longest text one exception argument that is no string gets in
 * {@link excArgsText}: Celery's repr size limit, which also bounds how deep
 * a nested argument is walked.
 */
const EXC_ARG_MAXSIZE = 4 * REPR_MAXSIZE;

/** The size tried when {@link EXC_ARG_MAXSIZE} ran out of stack. */
const EXC_ARG_SHORT = REPR_MAXSIZE / 4;

function excArgText(arg: unknown): string {
  if (typeof arg === "string") return arg;
  for (const maxsize of [EXC_ARG_MAXSIZE, EXC_ARG_SHORT]) {
    try {
      return resultRepr(arg, maxsize);
    } catch (err) {
      // Nested so deep the walk ran out of stack: a shorter text is walked less deep.
      if (!(err instanceof RangeError)) throw err;
    }
  }
  return "<nested too deep to show>";
}

/**
 * The exception arguments as a failure line shows them: strings as they
 * are, anything else as Python's `repr()` (what `str()` of a Python
 * exception shows: `{'field': 'email'}`, `None`, `True`), cut to 4,096
 * characters each ("..." marks a cut), joined with ", ". It never throws,
 * however deep an argument is nested. {@link TaskError}'s message and the
 * CLI's `result` / `call --wait` use it.
 *
 * @example
 * ```ts
 * import { excArgsText } from "./errors.ts";
 * excArgsText([{ field: "email", code: 3 }]); // "{'field': 'email', 'code': 3}"
 * excArgsText(["boom", null]); // "boom, None"
 * ```
 *
 * @param args the stored `exc_message`
 * @returns one line of text
 */
export function excArgsText(args: readonly unknown[]): string {
  return args.map(excArgText).join(", ");
}

/**
 * A task failed (or was revoked). Carries the exception as the worker stored
 * it, whichever language the worker was written in.
 *
 * @example
 * ```ts
 * import { Celery, TaskError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const result = await add.delay(2, 3);
 * try {
 *   await result.get({ timeout: 10_000 });
 * } catch (err) {
 *   if (err instanceof TaskError && err.excType === "ValueError") {
 *     console.error(err.message, err.traceback); // err.excMessage: the arguments, e.g. ["boom"]
 *   }
 * }
 * ```
 */
export class TaskError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "TASK_FAILED";
  /** The task id. */
  readonly taskId: string;
  /** The stored state (`FAILURE` or `REVOKED`). */
  readonly state: TaskState;
  /** Exception class name, e.g. `ValueError`, `TypeError`, `NotRegistered`. */
  readonly excType: string;
  /** Module of the exception class, e.g. `builtins`, `celery.exceptions`. */
  readonly excModule: string;
  /**
   * The exception's arguments as stored: Celery's `exc_message`, the
   * argument tuple (`["boom"]` for `ValueError("boom")`, `[]` for none), not
   * one string. `message` is the text (`Task <id> failed: ValueError: boom`);
   * {@link excArgsText} writes the arguments on one line.
   */
  readonly excMessage: unknown[];
  /** The traceback text stored by the worker, if any. */
  readonly traceback: string | null;

  /**
   * Describe a failed task from its stored meta.
   *
   * @param taskId the failed task
   * @param state the stored state
   * @param info the stored exception dict
   * @param traceback the stored traceback
   */
  constructor(taskId: string, state: TaskState, info: ExceptionInfo, traceback: string | null) {
    const detail = info.exc_message.length ? `: ${excArgsText(info.exc_message)}` : "";
    super(
      `Task ${taskId} ${state === "REVOKED" ? "was revoked" : "failed"}: ${info.exc_type}${detail}`,
    );
    this.name = "TaskError";
    this.taskId = taskId;
    this.state = state;
    this.excType = info.exc_type;
    this.excModule = info.exc_module;
    this.excMessage = info.exc_message;
    this.traceback = traceback;
  }
}

function asExceptionInfo(v: unknown): ExceptionInfo {
  const o = (v !== null && typeof v === "object" ? v : {}) as Partial<ExceptionInfo>;
  // A stored result that is no exception dict (another tool's) is the message itself.
  const msg = v !== null && typeof v !== "object" ? v : o.exc_message;
  return {
    exc_type: typeof o.exc_type === "string" ? o.exc_type : "Exception",
    exc_message: Array.isArray(msg) ? msg : msg === undefined ? [] : [msg],
    exc_module: typeof o.exc_module === "string" ? o.exc_module : "builtins",
  };
}

/**
 * Turn a stored failure into a {@link TaskError}.
 *
 * @example
 * ```ts
 * import { taskErrorFromMeta } from "@celeriac/celeriac/protocol";
 * const err = taskErrorFromMeta({
 *   status: "FAILURE", task_id: "1", traceback: null, children: [], date_done: null,
 *   result: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
 * });
 * // err.excType === "ValueError"
 * ```
 *
 * @param meta a meta in an exception state
 * @returns the error
 */
export function taskErrorFromMeta(meta: ResultMeta): TaskError {
  return new TaskError(meta.task_id, meta.status, asExceptionInfo(meta.result), meta.traceback);
}

/**
 * Waiting for a result took longer than the timeout given to `get()`. The
 * message says the task's state read when the wait ended (PENDING: no
 * worker started it, or one runs it without `trackStarted`; STARTED: a
 * worker runs it) and, when this client sent the task, its queue. On
 * rpc:// a PENDING task may simply be another client's: only the client
 * that sent a task receives its result, and the message says so.
 *
 * @example
 * ```ts
 * import { Celery, TimeoutError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const result = await add.delay(2, 3);
 * try {
 *   await result.get({ timeout: 100 });
 * } catch (err) {
 *   if (err instanceof TimeoutError) console.log("still running:", err.taskId, err.state);
 * }
 * ```
 */
export class TimeoutError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "TIMEOUT";
  /** The task waited for. */
  readonly taskId: string;
  /** The task's state read when the wait ended (`PENDING`, `STARTED`, …); `undefined` when not read. */
  readonly state: string | undefined;
  /** The queue the task was sent to, when this client sent it. */
  readonly queue: string | undefined;

  /**
   * Describe a wait that timed out.
   *
   * @param taskId the task waited for
   * @param timeoutMs the timeout that expired
   * @param seen the task's state read when the wait ended and the queue it
   *   was sent to, each when known (default: neither), and `rpc`: the wait was
   *   on the rpc:// backend (default false)
   */
  constructor(
    taskId: string,
    timeoutMs: number,
    seen: { state?: string; queue?: string; rpc?: boolean } = {},
  ) {
    super(`Task ${taskId} was not ready after ${timeoutMs} ms: ${whyNotReady(seen)}`);
    this.name = "TimeoutError";
    this.taskId = taskId;
    this.state = seen.state;
    this.queue = seen.queue;
  }
}

/** What a task's last known state says about a wait that timed out, and what to check. */
function whyNotReady(
  { state, queue, rpc }: { state?: string; queue?: string; rpc?: boolean },
): string {
  const consumed = `is a worker consuming ${
    queue === undefined ? "its queue" : `queue "${queue}"`
  }?`;
  const longer = "Raise the timeout for long tasks";
  if (rpc && (state === undefined || state === "PENDING")) {
    // Nothing reached this client's reply queue: the task may be another client's.
    const sender = queue === undefined
      ? "only the client that sent a task receives its result, so a task sent by another " +
        "client (or by this program before a restart) never arrives here: wait for it in the " +
        "client that sent it, or use a backend that stores results (redis://); if this client " +
        `sent it, ${consumed}`
      : `only the client that sent a task receives its result (this one did): ${consumed}`;
    return `no result reached this client on rpc://: ${sender} ${longer}`;
  }
  switch (state) {
    case undefined:
      return `${consumed} ${longer}`;
    case "PENDING":
      return "it is still PENDING (no worker has started it, or one runs it without " +
        `trackStarted): ${consumed} ${longer}`;
    case "STARTED":
      return `it is STARTED (a worker runs it): ${longer.toLowerCase()}`;
    case "RETRY":
      return `it is in RETRY (it failed and waits for its next try): ${consumed} ${longer}`;
    default:
      return `its state is ${state} (set while it runs): ${longer.toLowerCase()}`;
  }
}

/**
 * The app has no result backend configured, so results cannot be read.
 *
 * @example
 * ```ts
 * import { NoResultBackendError } from "@celeriac/celeriac";
 * // thrown by result.get() when the app was created with a broker only
 * ```
 */
export class NoResultBackendError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "NO_RESULT_BACKEND";

  constructor() {
    super(
      "No result backend is configured: pass `backend` to new Celery(...) or set " +
        "CELERY_RESULT_BACKEND (e.g. redis://127.0.0.1:6379/0)",
    );
    this.name = "NoResultBackendError";
  }
}

/**
 * A chord was applied on a result backend that cannot join chords (rpc://,
 * as in Celery, whose rpc backend refuses chords too), or a chain holding
 * one: a chord step, or a group followed by another step (which Celery
 * turns into a chord). Nothing was sent.
 *
 * @example
 * ```ts
 * import { Celery, chord, ChordUnsupportedError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const tsum = app.task("tasks.tsum", (ns: number[]) => ns.reduce((a, b) => a + b, 0));
 * try {
 *   await chord([add.s(1, 1)], tsum.s()).applyAsync();
 * } catch (err) {
 *   if (err instanceof ChordUnsupportedError) console.error(err.message);
 * }
 * ```
 */
export class ChordUnsupportedError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "CHORD_UNSUPPORTED";
  /** The backend's transport name, e.g. `rpc`. */
  readonly transport: string;

  /**
   * Describe the refused chord.
   *
   * @param transport the backend's transport name
   */
  constructor(transport: string) {
    super(
      `The "${transport}" result backend does not support chords (nothing was sent; in a chain, ` +
        "a group followed by another step is a chord too): use a backend that joins chords, " +
        "redis:// (interoperable with Python Celery) or kv://",
    );
    this.name = "ChordUnsupportedError";
    this.transport = transport;
  }
}

/**
 * A batch send (`delayMany()`, `app.sendMany()`) stopped part way: the
 * broker went down or the `signal` aborted once some messages were
 * written. `outcomes[i]` tells what became of the batch's call `i` (the
 * `i`-th element of `delayMany()`'s `argsList`, of `sendMany()`'s calls):
 * `"sent"` (the broker took it), `"unsent"` (never written: send that call
 * again) or `"unknown"` (written, not answered: it may run; check before
 * sending it again). `ids[i]` is its task id, as the result handles would
 * have had it. `sent`, `unsent` and `unknown` list the same ids by outcome.
 * A batch of which nothing went out rejects with the cause itself (the
 * broker's error, or the signal's reason) instead.
 *
 * @example Sending again exactly the calls that were not sent
 * ```ts
 * import { BatchSendError, Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const argsList: [number, number][] = [[1, 2], [3, 4], [5, 6]];
 * try {
 *   await add.delayMany(argsList, { signal: AbortSignal.timeout(5_000) });
 * } catch (err) {
 *   if (!(err instanceof BatchSendError)) throw err; // nothing was sent
 *   const again = await add.delayMany(argsList.filter((_, i) => err.outcomes[i] === "unsent"));
 *   const check = argsList.filter((_, i) => err.outcomes[i] === "unknown");
 *   console.log(`${again.length} sent again; ${check.length} may have gone:`, err.unknown);
 * }
 * ```
 */
export class BatchSendError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BATCH_SEND_PARTIAL";
  /** Every call's task id, in the batch's order (`ids[i]` is call `i`'s). */
  readonly ids: readonly string[];
  /** What became of each call, in the batch's order (`outcomes[i]` is call `i`'s). */
  readonly outcomes: readonly ("sent" | "unsent" | "unknown")[];
  /** Task ids the broker took, in the batch's order. */
  readonly sent: string[];
  /** Task ids never written, in the batch's order: their calls can be sent again. */
  readonly unsent: string[];
  /** Task ids written without an answer, in the batch's order: they may have gone out. */
  readonly unknown: string[];

  /**
   * Describe a batch stopped part way.
   *
   * @param ids the batch's task ids, in order
   * @param outcomes what became of each, in the same order
   * @param cause what stopped the batch
   */
  constructor(
    ids: readonly string[],
    outcomes: readonly ("sent" | "unsent" | "unknown")[],
    cause: unknown,
  ) {
    const sent: string[] = [], unsent: string[] = [], unknown: string[] = [];
    ids.forEach((id, i) =>
      (outcomes[i] === "sent" ? sent : outcomes[i] === "unsent" ? unsent : unknown).push(id)
    );
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `A batch of ${ids.length} tasks stopped part way (${why}): ${sent.length} sent, ` +
        `${unsent.length} not sent (send again the calls i whose err.outcomes[i] is "unsent"), ` +
        `${unknown.length} unknown (may have gone out: check the calls whose err.outcomes[i] is ` +
        `"unknown", ids in err.unknown, before sending them again)`,
      { cause },
    );
    this.name = "BatchSendError";
    this.ids = Object.freeze([...ids]);
    this.outcomes = Object.freeze(ids.map((_, i) => outcomes[i] ?? "unknown"));
    this.sent = sent;
    this.unsent = unsent;
    this.unknown = unknown;
  }
}

/**
 * A call of a task defined in this program that its handler cannot take
 * (too few or too many positional arguments, a keyword it does not name):
 * `delay()`, `applyAsync()` and `delayMany()` refuse it before anything is
 * sent, as Celery's `apply_async` raises `TypeError` at the caller, since its
 * worker would only fail it with that `TypeError`. It is a `TypeError`, and
 * a task that makes such a call fails with Python's `TypeError` (the
 * `reason`). Define the task with `typing: false` to send such calls
 * unchecked, for workers whose definition of the task takes them; a task
 * made with `app.remoteTask()` has no handler here and is never checked.
 *
 * @example
 * ```ts
 * import { Celery, TaskArgumentsError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * try {
 *   await add.applyAsync([1, 2], { kwargs: { c: 3 } });
 * } catch (err) {
 *   if (err instanceof TaskArgumentsError) console.error(err.reason); // add() got keyword …
 * }
 * ```
 */
export class TaskArgumentsError extends TypeError {
  /** Stable code for programmatic checks. */
  readonly code: string = "TASK_ARGUMENTS";
  /** The task name. */
  readonly task: string;
  /** Python's `TypeError` text, e.g. `add() missing 1 required positional argument: 'b'`. */
  readonly reason: string;
  /** The call's place in its `delayMany()` batch; `undefined` for one call. */
  readonly index: number | undefined;
  /** The Python class a task that makes the call fails with. */
  readonly excType: string = "TypeError";
  /** Its module. */
  readonly excModule: string = "builtins";
  /** Its arguments: the `reason`. */
  readonly args: unknown[];

  /**
   * Describe the refused call.
   *
   * @param task the task name
   * @param reason Python's `TypeError` text for the call
   * @param index the call's place in a `delayMany()` batch, if it is one
   */
  constructor(task: string, reason: string, index?: number) {
    const which = index === undefined ? "this call" : `the call argsList[${index}]`;
    super(
      `${task} cannot take ${which}, so nothing was sent: ${reason}. Pass the arguments its ` +
        `handler takes, or define ${task} with { typing: false } to send calls unchecked, for ` +
        `workers whose ${task} takes them`,
    );
    this.name = "TaskArgumentsError";
    this.task = task;
    this.reason = reason;
    this.index = index;
    this.args = [reason];
  }
}
