/**
 * Typed task handles: sending calls of a task, and the signatures and
 * canvas shortcuts (`map`, `starmap`, `chunks`) made from it. Its options
 * and the context a bound handler receives are in task_options.ts.
 *
 * @module
 */

import { checkSend } from "./arity.ts";
import type { AsyncResult } from "./async_result.ts";
import { type CanvasApp, Group, Signature } from "./canvas/signature.ts";
import { CALL_DEFAULTS, signatureDefaults } from "./routes.ts";
import type { ApplyOptions, DelayManyOptions, TaskOptions, TaskSender } from "./task_options.ts";

/**
 * The task options that are a call's defaults (its call options override
 * them), as of its signatures: `ignoreResult` among them, which Celery's
 * `Task.apply_async` puts in the message (`ignore_result`), so that any
 * worker (a Python one too) stores no result and the handle's `get()` waits
 * for none.
 */
const CALL_DEFAULT_OPTIONS = CALL_DEFAULTS.map(([option]) => option);

/** The keyword arguments of a call that has none. */
const NO_KWARGS: Record<string, unknown> = Object.freeze({});

/**
 * A typed handle to a task: call it with {@link Task.delay} or
 * {@link Task.applyAsync}. Created by `app.task(...)` (defined here) or
 * `app.remoteTask(...)` (served by another worker, e.g. Python).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const r = await add.delay(2, 3);
 * const v: number = await r.get({ timeout: 10_000 });
 * ```
 */
export class Task<A extends unknown[], R> {
  /** The registered task name. */
  readonly name: string;
  /** The task's options. */
  readonly options: Readonly<TaskOptions>;
  /** The handler, for tasks defined in this program; `undefined` for remote tasks. */
  readonly handler: ((...args: never[]) => unknown) | undefined;
  readonly #sender: TaskSender;
  /** The call options of `delay()`: the task's defaults, frozen. */
  #defaults: ApplyOptions | undefined;

  /**
   * Use `app.task()` or `app.remoteTask()`.
   *
   * @param sender the app
   * @param name task name
   * @param options task options
   * @param handler the implementation, if defined here
   */
  constructor(
    sender: TaskSender,
    name: string,
    options: TaskOptions,
    handler?: (...args: never[]) => unknown,
  ) {
    this.#sender = sender;
    this.name = name;
    this.options = options;
    this.handler = handler;
  }

  /**
   * Send a call with positional arguments and default options.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * ```
   *
   * @param args the task's arguments
   * @returns the result handle, once the broker has the message
   * @throws {TaskArgumentsError} (as a rejection) when the handler cannot take the arguments
   *   (see {@link Task.applyAsync}); nothing is sent
   */
  delay(...args: A): Promise<AsyncResult<R>> {
    try {
      checkSend(this.#self(), args, NO_KWARGS);
    } catch (err) {
      return Promise.reject(err);
    }
    // One frozen options object while the task's options stay the same: the app keeps their
    // message template. Options changed since (the object given to app.task()) make a new one.
    let defaults = this.#defaults;
    if (!defaults || CALL_DEFAULT_OPTIONS.some((k) => defaults![k] !== this.options[k])) {
      defaults = this.#defaults = Object.freeze(this.#callOptions({}));
    }
    return this.#sender.sendTask<R>(this.name, args, defaults);
  }

  /**
   * Send many calls at once, one per element of `argsList`, as one batch
   * (`app.sendMany()`: Redis pushes each queue's messages with one command,
   * RabbitMQ awaits their publisher confirms together). Much faster than
   * `delay()` in a loop for bulk work; resolves once the broker has every
   * message, with the result handles in order. `options.signal` stops the
   * batch: see `SendManyOptions` (and `BatchSendError` for a
   * batch stopped part way, by the signal or the broker going down).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const results = await add.delayMany([[1, 2], [3, 4], [5, 6]]);
   * const sums = await Promise.all(results.map((r) => r.get({ timeout: 10_000 })));
   * ```
   *
   * @example Stopping a batch
   * ```ts
   * import { BatchSendError, Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const argsList: [number, number][] = [[1, 2], [3, 4], [5, 6]];
   * try {
   *   await add.delayMany(argsList, { signal: AbortSignal.timeout(5_000) });
   * } catch (err) {
   *   if (!(err instanceof BatchSendError)) throw err; // nothing was sent
   *   // outcomes[i] is argsList[i]'s: send again exactly the calls never written.
   *   await add.delayMany(argsList.filter((_, i) => err.outcomes[i] === "unsent"));
   * }
   * ```
   *
   * @param argsList each call's arguments
   * @param options call options shared by every call (a `taskId` is refused: ids must differ;
   *   `app.sendMany()` takes one per call), and the batch's `signal`; default none
   * @returns the result handles, in the order of `argsList`
   * @throws {TaskArgumentsError} (as a rejection) when the handler cannot take one of the calls
   *   (see {@link Task.applyAsync}; its `index` says which); nothing is sent
   */
  delayMany(argsList: readonly A[], options: DelayManyOptions = {}): Promise<AsyncResult<R>[]> {
    if (options.taskId !== undefined) {
      throw new TypeError(`${this.name}.delayMany() cannot share one taskId between calls`);
    }
    const self = this.#self();
    const kwargs = options.kwargs ?? NO_KWARGS;
    try {
      argsList.forEach((args, i) => checkSend(self, args, kwargs, i));
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal, ...callOptions } = options;
    const shared = this.#callOptions(callOptions);
    if (!this.#sender.sendMany) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      return Promise.all(argsList.map((args) => this.#sender.sendTask<R>(this.name, args, shared)));
    }
    return this.#sender.sendMany<R>(
      argsList.map((args) => ({ name: this.name, args, options: shared })),
      { signal },
    );
  }

  /**
   * Send a call with options (countdown, expires, priority, queue, ...).
   *
   * A call the task's handler cannot take — positional arguments missing
   * or too many, keyword arguments (`options.kwargs`) it does not name — is
   * refused before anything is sent, with a `TaskArgumentsError`
   * quoting the `TypeError` its worker would fail it with, as Celery's
   * `apply_async` raises it at the caller. A task defined with
   * `typing: false`, or made with `app.remoteTask()` (no handler here), is
   * sent unchecked.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.applyAsync([2, 3], { countdown: 5, queue: "math" });
   * ```
   *
   * @param args the task's arguments
   * @param options call options
   * @returns the result handle, once the broker has the message
   * @throws {TaskArgumentsError} (as a rejection) when the handler cannot take the call; nothing
   *   is sent
   */
  applyAsync(args: A, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    try {
      checkSend(this.#self(), args, options.kwargs ?? NO_KWARGS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#sender.sendTask<R>(this.name, args, this.#callOptions(options));
  }

  /** This task, as the argument checks take any task. */
  #self(): Task<never, unknown> {
    return this as unknown as Task<never, unknown>;
  }

  /** The task's defaults for a call, under the call's own options. */
  #callOptions(options: ApplyOptions): ApplyOptions {
    const out: Record<string, unknown> = {};
    for (const k of CALL_DEFAULT_OPTIONS) out[k] = this.options[k];
    return { ...out, ...stripUndefined(options) };
  }

  #canvasApp(): CanvasApp {
    const app = this.#sender as Partial<CanvasApp>;
    if (typeof app.applyCanvas !== "function") {
      throw new TypeError(
        `Task ${this.name} was made without an app: use app.task() or app.remoteTask()`,
      );
    }
    return app as CanvasApp;
  }

  #sig<X>(
    task: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    immutable: boolean,
    type: string | null,
  ): Signature<X> {
    // As Celery's `add.s()`: no options; the task's apply when a signature is sent (routes.ts),
    // by any app that defines it. A task served elsewhere has no definition to take them from
    // there: its handle's defaults travel in its signatures.
    const remote = type === null && !this.handler;
    return new Signature<X>(this.#canvasApp(), {
      task,
      args,
      kwargs,
      options: remote ? signatureDefaults(this.options) : {},
      subtask_type: type,
      immutable,
    });
  }

  #plain(): Record<string, unknown> {
    return {
      task: this.name,
      args: [],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
  }

  /**
   * A signature with partial arguments: in a chain (or as a chord body,
   * or a callback) the previous result is prepended (Celery's `.s()`), so
   * the partial arguments are the last ones: the type accepts any tail of
   * the task's parameters (all of them, the last ones, or none).
   *
   * @example
   * ```ts
   * import { Celery, chain } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const r = await chain(add.s(1, 2), add.s(3)).applyAsync(); // add(add(1, 2), 3)
   * ```
   *
   * @param args trailing arguments (the leading ones come from the parent or the call)
   * @returns the signature
   */
  s(...args: ArgsSuffix<A>): Signature<R> {
    return this.#sig<R>(this.name, [...args], {}, false, null);
  }

  /**
   * An immutable signature: it ignores the previous result (Celery's `.si()`).
   *
   * @example
   * ```ts
   * import { Celery, chain } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * chain(add.s(1, 2), add.si(10, 10)); // the second step gets (10, 10)
   * ```
   *
   * @param args all arguments
   * @returns the signature
   */
  si(...args: A): Signature<R> {
    return this.#sig<R>(this.name, [...args], {}, true, null);
  }

  /**
   * Call the task once per item, in one `celery.map` task on one worker
   * (Celery's `task.map(it)`); the result is the list of results.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const tsum = app.task("tasks.tsum", (ns: number[]) => ns.reduce((a, b) => a + b, 0));
   * await (await tsum.map([[1, 2], [3, 4]]).applyAsync()).get(); // [3, 7]
   * ```
   *
   * @param items one first argument per call
   * @returns the signature
   */
  map(items: readonly A[0][]): Signature<R[]> {
    return this.#sig<R[]>("celery.map", [], { task: this.#plain(), it: [...items] }, false, "xmap");
  }

  /**
   * Call the task once per argument list, in one `celery.starmap` task
   * (Celery's `task.starmap(it)`).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * await (await add.starmap([[1, 2], [3, 4]]).applyAsync()).get(); // [3, 7]
   * ```
   *
   * @param items one argument list per call
   * @returns the signature
   */
  starmap(items: readonly A[]): Signature<R[]> {
    return this.#sig<R[]>(
      "celery.starmap",
      [],
      { task: this.#plain(), it: items.map((a) => [...a]) },
      false,
      "xstarmap",
    );
  }

  /**
   * Split argument lists into chunks of `n`, each run as one
   * `celery.starmap` task, in parallel (Celery's `task.chunks(it, n)`).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const res = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
   * await res.get(); // [[2, 4], [6]]
   * ```
   *
   * @param items one argument list per call
   * @param n calls per chunk (>= 1)
   * @returns the group of chunks
   * @throws {RangeError} when n is not a positive integer
   */
  chunks(items: readonly A[], n: number): Group<R[][], "other"> {
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`chunks() needs a chunk size n >= 1, got ${n}`);
    }
    const sig = this.#sig<R[]>(
      "celery.chunks",
      [],
      { task: this.#plain(), it: items.map((a) => [...a]), n },
      false,
      "chunks",
    );
    return new Group<R[][], "other">(sig.app, sig.toDict());
  }
}

/**
 * The argument lists a signature may hold: the task's parameters or any
 * tail of them (in a chain the leading ones come from the previous result).
 *
 * @example
 * ```ts
 * import type { ArgsSuffix } from "@celeriac/celeriac";
 * const all: ArgsSuffix<[number, string]> = [1, "a"];
 * const tail: ArgsSuffix<[number, string]> = ["a"];
 * const none: ArgsSuffix<[number, string]> = [];
 * ```
 */
export type ArgsSuffix<A extends unknown[]> =
  | A
  | (A extends [unknown, ...infer Rest] ? ArgsSuffix<Rest> : A extends [] ? never : []);

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
