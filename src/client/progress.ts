/**
 * Following a task's states as they are stored (STARTED, RETRY, PROGRESS
 * and other custom states, then the ready one), pushed by the result
 * backend: the machinery behind `AsyncResult.onProgress` and
 * `AsyncResult.updates`.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { ResultMeta, TaskState } from "../protocol/result_meta.ts";
import { TimeoutError } from "./errors.ts";
import { longTimeout } from "../broker/long_timeout.ts";

/**
 * One state of a task, as stored.
 *
 * @example
 * ```ts
 * import type { TaskUpdate } from "@celeriac/celeriac";
 * function show(update: TaskUpdate) {
 *   if (update.state === "PROGRESS") {
 *     const { done, total } = update.info as { done: number; total: number };
 *     console.log(`${done}/${total}`);
 *   }
 * }
 * ```
 */
export interface TaskUpdate {
  /** The state: `STARTED`, `RETRY`, a custom one such as `PROGRESS`, or a ready one. */
  state: TaskState;
  /**
   * What the state carries (Celery's `AsyncResult.info`): the meta given to
   * `updateState`, `{pid, hostname}` for STARTED, the exception dict for
   * RETRY / FAILURE, the return value for SUCCESS.
   */
  info: unknown;
  /** The stored meta as it is. */
  meta: ResultMeta;
}

function toUpdate(meta: ResultMeta): TaskUpdate {
  return { state: meta.status, info: meta.result, meta };
}

/** The signal of one wait: see {@link waitSignal}. */
export interface WaitSignal {
  /** Aborted by the caller's signal, the timeout or {@link WaitSignal.abort}, with its reason. */
  readonly signal: AbortSignal;
  /** Whether the timeout aborted it. */
  readonly timedOut: boolean;
  /** Abort the wait (a listener threw `reason`). */
  abort(reason: unknown): void;
  /** The wait ended: clear its timer and stop following the caller's signal. */
  release(): void;
}

/**
 * One signal for a wait: the caller's, a timeout (a `TimeoutError`
 * `DOMException`, as `AbortSignal.timeout`'s), and an abort of our own, on
 * one controller. Released when the wait ends, it leaves no timer pending
 * and no listener on the caller's signal: a `get({ timeout })` made an
 * `AbortSignal.timeout` (its timer pending until it fired), an
 * `AbortController` and an `AbortSignal.any` of the three per call.
 *
 * @example
 * ```ts ignore
 * const wait = waitSignal({ timeout: 1000 });
 * try {
 *   await backend.waitFor(id, wait.signal);
 * } finally {
 *   wait.release();
 * }
 * ```
 *
 * @param options timeout (ms) and the caller's signal
 * @returns the wait's signal
 */
export function waitSignal(options: { timeout?: number; signal?: AbortSignal }): WaitSignal {
  const own = new AbortController();
  const caller = options.signal;
  let timedOut = false;
  let timer: { clear(): void } | undefined;
  const onCaller = () => own.abort(caller!.reason);
  if (caller?.aborted) own.abort(caller.reason);
  else caller?.addEventListener("abort", onCaller, { once: true });
  if (options.timeout !== undefined && !own.signal.aborted) {
    timer = longTimeout(options.timeout, () => {
      timedOut = !own.signal.aborted;
      own.abort(new DOMException("Signal timed out.", "TimeoutError"));
    });
  }
  return {
    signal: own.signal,
    get timedOut() {
      return timedOut;
    },
    abort: (reason) => own.abort(reason),
    release() {
      timer?.clear();
      caller?.removeEventListener("abort", onCaller);
    },
  };
}

/**
 * Wait for the ready state, calling `listener` for each state stored before
 * it. An error thrown by the listener ends the wait with that error.
 *
 * @example
 * ```ts ignore
 * const meta = await followStates(backend, id, { timeout: 10_000 }, (u) => console.log(u.state));
 * ```
 *
 * @param backend the result backend
 * @param id the task id
 * @param options timeout (ms), abort signal, and the queue the task was sent to (for the
 *   timeout's message), when known
 * @param listener called with each state before the ready one
 * @returns the ready meta
 * @throws {TimeoutError} when the timeout passes first
 */
export async function followStates(
  backend: ResultBackend,
  id: string,
  options: { timeout?: number; signal?: AbortSignal; queue?: string },
  listener?: (update: TaskUpdate) => void,
): Promise<ResultMeta> {
  const wait = waitSignal(options);
  const { signal } = wait;
  // Each state the backend tells, once per store: a task retried three times is three RETRYs.
  const follow = listener ? (meta: ResultMeta) => listener(toUpdate(meta)) : undefined;
  /** The state the backend read when the timeout ended its wait (see `ResultBackend.waitFor`). */
  let atAbort: string | undefined;
  const onState = (meta: ResultMeta) => {
    if (signal.aborted) atAbort = meta.status;
    else if (follow) {
      try {
        follow(meta);
      } catch (err) {
        wait.abort(err);
      }
    }
  };
  try {
    return await backend.waitFor(id, signal, onState);
  } catch (err) {
    if (wait.timedOut && !options.signal?.aborted) {
      const state = atAbort ?? await lastState(backend, id);
      const rpc = backend.transport === "rpc";
      throw new TimeoutError(id, options.timeout!, { state, queue: options.queue, rpc });
    }
    throw err;
  } finally {
    wait.release();
  }
}

/**
 * The task's stored state (`PENDING` when none is), for the message of a
 * wait that timed out when its backend did not say it (its read at the
 * abort failed, or a backend of another author): read within 1 s,
 * `undefined` when the read fails or takes longer (the backend itself may
 * be why the wait timed out).
 */
async function lastState(backend: ResultBackend, id: string): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      backend.get(id).then((meta) => meta?.status ?? "PENDING"),
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 1000)),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every state of a task as it is stored, ending with the ready one.
 *
 * @example
 * ```ts ignore
 * for await (const update of stateUpdates(backend, id, {})) console.log(update.state);
 * ```
 *
 * @param backend the result backend
 * @param id the task id
 * @param options timeout (ms), abort signal, the queue the task was sent to, when known,
 *   `held` (the ready meta its handle keeps: yielded alone, no wait; default none) and
 *   `onReady` (told the ready meta the wait ended with, for the handle to keep; default none)
 * @returns the updates
 * @throws {TimeoutError} when the timeout passes before the task is ready
 */
export async function* stateUpdates(
  backend: ResultBackend,
  id: string,
  options: {
    timeout?: number;
    signal?: AbortSignal;
    queue?: string;
    held?: ResultMeta;
    onReady?: (meta: ResultMeta) => void;
  },
): AsyncGenerator<TaskUpdate, void, undefined> {
  if (options.held) {
    yield toUpdate(options.held);
    return;
  }
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const queue: TaskUpdate[] = [];
  let wake: (() => void) | null = null;
  const end: { outcome: { meta: ResultMeta } | { error: unknown } | null } = { outcome: null };
  const notify = () => {
    wake?.();
    wake = null;
  };
  followStates(backend, id, { timeout: options.timeout, signal, queue: options.queue }, (u) => {
    queue.push(u);
    notify();
  }).then((meta) => {
    options.onReady?.(meta);
    end.outcome = { meta };
  }, (error) => end.outcome = { error }).finally(notify);
  try {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      const done = end.outcome;
      if (done !== null) {
        if ("error" in done) throw done.error;
        yield toUpdate(done.meta);
        return;
      }
      await new Promise<void>((resolve) => wake = resolve);
    }
  } finally {
    stop.abort();
  }
}
