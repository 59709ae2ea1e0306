/**
 * {@link AsyncResult}: a handle to the outcome of a task call, and the
 * {@link ResultSource} it reads through. The options of its waits are in
 * get_options.ts; a stored failure becomes a `TaskError` in errors.ts.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Control, RevokeOptions } from "./control.ts";
import {
  EXCEPTION_STATES,
  READY_STATES,
  type ResultMeta,
  type TaskState,
} from "../protocol/result_meta.ts";
import { resultTupleFromJson } from "../protocol/signature.ts";
import { currentTask } from "./current.ts";
import { type TaskError, taskErrorFromMeta } from "./errors.ts";
import { checkGetOptions, type GetOptions } from "./get_options.ts";
import { type MemberResult, resultFromTuple } from "./group_result.ts";
import { followStates, stateUpdates, type TaskUpdate } from "./progress.ts";
import { waitFollowingParents } from "./parent_failures.ts";
import { dropReady, heldReady, holdReady } from "./ready_results.ts";

/**
 * Gives results access to the app's backend.
 *
 * @example Reading results without an app
 * ```ts
 * import { AsyncResult } from "@celeriac/celeriac";
 * import { openBackend, type ResultSource } from "@celeriac/celeriac/protocol";
 * const backend = await openBackend("kv://:memory:");
 * const source: ResultSource = { resultBackend: () => Promise.resolve(backend) };
 * const result = new AsyncResult<number>(crypto.randomUUID(), source);
 * await result.state(); // "PENDING": nothing stored for this id
 * await backend.close();
 * ```
 */
export interface ResultSource {
  /** The app's result backend (opened on first use). */
  resultBackend(): Promise<ResultBackend>;
  /** The app's remote control, for {@link AsyncResult.revoke}. */
  readonly control?: Control;
}

/**
 * A result's earlier chain steps, oldest first; groups on the way (a
 * chord's header) are passed over.
 */
function chainParents(result: MemberResult): AsyncResult<unknown>[] {
  const steps: AsyncResult<unknown>[] = [];
  for (let node = result.parent; node; node = node.parent) {
    if (node instanceof AsyncResult) steps.unshift(node);
  }
  return steps;
}

function notInsideATask(): void {
  if (currentTask.getStore()) {
    // Celery raises RuntimeError here: a Python caller of the task re-raises that class.
    const err = new Error(
      "Never wait for a result inside a task: it can deadlock the worker. " +
        "Chain the tasks, or return and let the caller wait",
    );
    err.name = "RuntimeError";
    throw err;
  }
}

/**
 * The outcome of a task call, typed by the task's return type.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const r = await add.delay(2, 3);
 * console.log(r.id, await r.state()); // "…", "PENDING"
 * const sum: number = await r.get({ timeout: 10_000 });
 * ```
 */
export class AsyncResult<T = unknown> {
  /** The task id. */
  readonly id: string;
  /** In a chain, the previous step's result (Celery's `parent`). */
  readonly parent: MemberResult | undefined;
  /**
   * The queue the task was sent to, when this handle came from sending it
   * (`delay()`, `applyAsync()`, `sendTask()`, `sendMany()`); named by the
   * message of a `get()` that times out.
   */
  readonly queue: string | undefined;
  /**
   * The task was sent with `ignoreResult` (its own or its task's), so no
   * result will be stored: {@link AsyncResult.get} resolves `undefined` at
   * once, as Celery's `AsyncResult.ignored` makes `get()` return `None`.
   * False for a handle made from an id alone.
   */
  readonly ignored: boolean;
  readonly #source: ResultSource;

  /**
   * Create a handle (usually through `app.asyncResult(id)` or a task call).
   *
   * @param id the task id
   * @param source the app whose backend holds the result
   * @param parent the previous step's result, in a chain
   * @param queue the queue the task was sent to, when known (default unknown)
   * @param ignored the task was sent with `ignoreResult` (default false)
   */
  constructor(
    id: string,
    source: ResultSource,
    parent?: MemberResult,
    queue?: string,
    ignored = false,
  ) {
    this.id = id;
    this.#source = source;
    this.parent = parent;
    this.queue = queue;
    this.ignored = ignored;
  }

  /**
   * Results of the tasks this one sent while it ran (its next chain step,
   * callbacks, tasks it called), from the stored meta's `children`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * const [next] = await result.children();
   * ```
   *
   * @returns the child results; empty while nothing is stored
   */
  async children(): Promise<MemberResult[]> {
    const meta = await this.info();
    return (meta?.children ?? []).map((c) => resultFromTuple(resultTupleFromJson(c), this.#source));
  }

  /**
   * Wait for this task and, depth first, every task it sent (its
   * `children`, recursively), yielding each with its value, as Celery's
   * `collect()`. A failure is thrown as its `TaskError`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * for await (const [r, value] of result.collect({ timeout: 10_000 })) console.log(r.id, value);
   * ```
   *
   * @param options timeout (ms) per wait, and abort signal
   * @yields `[result, value]` pairs
   */
  async *collect(options: GetOptions = {}): AsyncGenerator<[AsyncResult<unknown>, unknown]> {
    // Next to visit at the end; children pushed last first, one at a time (a
    // task may have sent more than a call takes arguments).
    const stack: MemberResult[] = [this];
    const pushChildren = (children: readonly MemberResult[]) => {
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    };
    while (stack.length > 0) {
      const r = stack.pop()!;
      if (r instanceof AsyncResult) {
        const value = await r.get(options);
        yield [r, value];
        pushChildren(await r.children());
      } else {
        pushChildren(r.children);
      }
    }
  }

  /**
   * Wait for the task to finish (push-based, no polling) and return its
   * value. In a chain, an earlier step that fails or is revoked ends the
   * wait with its error, as in Celery (see {@link GetOptions.followParents}).
   * A handle of a task sent with `ignoreResult` ({@link AsyncResult.ignored})
   * resolves `undefined` at once, waiting for nothing, as Celery's returns
   * `None`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * const value = await result.get({ timeout: 10_000 }); // milliseconds: 10 s
   * ```
   *
   * @param options timeout in milliseconds (Celery's is in seconds) and abort signal
   * @returns the task's return value; `undefined` when the task was sent with `ignoreResult`
   * @throws {TaskError} when the task (or an earlier chain step) failed or was revoked (with type,
   *   module, traceback)
   * @throws {TimeoutError} when the timeout passed first
   */
  async get(options: GetOptions = {}): Promise<T> {
    checkGetOptions(options, "get()");
    notInsideATask();
    if (this.ignored) return undefined as T;
    const backend = await this.#source.resultBackend();
    const parents = options.followParents === false ? [] : chainParents(this);
    let meta: ResultMeta;
    if (parents.length > 0) {
      const handles = new Map<string, AsyncResult<unknown>>(
        [...parents, this].map((r) => [r.id, r]),
      );
      meta = await waitFollowingParents(backend, this.id, parents.map((r) => r.id), {
        ...options,
        queue: this.queue,
        held: (id) => heldReady(handles.get(id)!),
        onReady: (id, m) => holdReady(handles.get(id)!, m),
      });
    } else {
      const held = heldReady(this);
      // A result held by this handle (read by state() or info(), which leave the backend's copy
      // for a wait) is the one this get() takes: the backend's copy (rpc://) is released.
      if (held) backend.release?.(this.id);
      meta = held ??
        await followStates(backend, this.id, { ...options, queue: this.queue }, options.onProgress);
      holdReady(this, meta);
    }
    if (meta.status === "SUCCESS") return meta.result as T;
    throw taskErrorFromMeta(meta);
  }

  /**
   * Wait for the task's value like {@link AsyncResult.get}, calling
   * `listener` with each state stored meanwhile — progress a task reports
   * with `ctx.updateState({ state: "PROGRESS", meta })`, STARTED, RETRY.
   * Push-based: the backend delivers each state as it is stored.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * const rows = await result.onProgress((u) => {
   *   if (u.state === "PROGRESS") console.log(u.info); // { done: 3, total: 10 }
   * }, { timeout: 60_000 });
   * ```
   *
   * @param listener called with each state before the task finishes
   * @param options timeout (ms) and abort signal
   * @returns the task's return value
   * @throws {TaskError} when the task failed or was revoked
   * @throws {TimeoutError} when the timeout passed first
   */
  onProgress(
    listener: (update: TaskUpdate) => void,
    options: Omit<GetOptions, "onProgress"> = {},
  ): Promise<T> {
    return this.get({ ...options, onProgress: listener });
  }

  /**
   * Every state of the task as it is stored, ending with the ready one
   * (SUCCESS, FAILURE or REVOKED; a failure is yielded, not thrown). The
   * state stored when iteration begins comes first. Leaving the loop early
   * stops listening.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * for await (const { state, info } of result.updates({ timeout: 60_000 })) {
   *   console.log(state, info); // STARTED {...}, PROGRESS {done: 1, ...}, …, SUCCESS 42
   * }
   * ```
   *
   * @param options timeout (ms) and abort signal
   * @returns the updates
   * @throws {TimeoutError} when the timeout passes before the task is ready
   */
  async *updates(
    options: Omit<GetOptions, "onProgress"> = {},
  ): AsyncGenerator<TaskUpdate, void, undefined> {
    checkGetOptions(options, "updates()");
    notInsideATask();
    yield* stateUpdates(await this.#source.resultBackend(), this.id, {
      ...options,
      queue: this.queue,
      held: heldReady(this),
      onReady: (meta) => holdReady(this, meta),
    });
  }

  /**
   * The stored meta, or `null` while nothing is stored (PENDING).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * const meta = await result.info();
   * ```
   *
   * @returns the meta
   */
  async info(): Promise<ResultMeta | null> {
    const held = heldReady(this);
    if (held) return held;
    const backend = await this.#source.resultBackend();
    const meta = await backend.get(this.id);
    // Kept on this handle; left in the backend (rpc://) for a wait, maybe another handle's: a read
    // takes nothing, as Celery 5.2's rpc puts the message back after reading it.
    if (meta && READY_STATES.has(meta.status)) holdReady(this, meta);
    return meta;
  }

  /**
   * The current state: `PENDING` until a worker stores something.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * if (await result.state() === "FAILURE") console.log("failed");
   * ```
   *
   * @returns the state
   */
  async state(): Promise<TaskState> {
    return (await this.info())?.status ?? "PENDING";
  }

  /**
   * Whether the task has finished (SUCCESS, FAILURE or REVOKED).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * if (await result.ready()) console.log(await result.get());
   * ```
   *
   * @returns true when ready
   */
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  /**
   * Whether the task succeeded (Celery's `successful()`): its state is SUCCESS.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * if (await result.successful()) console.log(await result.get());
   * ```
   *
   * @returns true when it succeeded
   */
  async successful(): Promise<boolean> {
    return await this.state() === "SUCCESS";
  }

  /**
   * Whether the task failed (Celery's `failed()`): its state is FAILURE.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * if (await result.failed()) console.log((await result.error())?.traceback);
   * ```
   *
   * @returns true when it failed
   */
  async failed(): Promise<boolean> {
    return await this.state() === "FAILURE";
  }

  /**
   * The error of a task in an exception state, else `null`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * const err = await result.error();
   * if (err) console.log(err.excType, err.traceback);
   * ```
   *
   * @returns the error
   */
  async error(): Promise<TaskError | null> {
    const meta = await this.info();
    return meta && EXCEPTION_STATES.has(meta.status) ? taskErrorFromMeta(meta) : null;
  }

  /**
   * Delete the stored result.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * await result.forget();
   * ```
   */
  async forget(): Promise<void> {
    dropReady(this);
    await (await this.#source.resultBackend()).forget(this.id);
  }

  /**
   * Revoke the task on every worker (see `app.control.revoke`).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const result = await add.delay(2, 3);
   * await result.revoke({ terminate: true });
   * ```
   *
   * @param options terminate, signal, destination
   * @throws {TypeError} when the handle was made without an app
   */
  async revoke(options: RevokeOptions = {}): Promise<void> {
    const control = this.#source.control;
    if (!control) {
      throw new TypeError("This AsyncResult has no app to revoke through: use app.asyncResult(id)");
    }
    await control.revoke(this.id, options);
  }
}
