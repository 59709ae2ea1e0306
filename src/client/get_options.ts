/**
 * What a wait for a result takes: {@link GetOptions} (`get()`,
 * `onProgress()`, `updates()`, `collect()` of a task's or a group's result)
 * and their check, which names the option to write instead of a wrong one.
 *
 * @module
 */

import { describeValue } from "../protocol/task_fields.ts";
import { closestName } from "./closest_name.ts";
import type { TaskUpdate } from "./progress.ts";

/**
 * Options of {@link AsyncResult.get}.
 *
 * @example Waiting with a timeout and a cancel signal
 * ```ts
 * import { Celery, type GetOptions, TimeoutError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const shutdown = new AbortController();
 * const options: GetOptions = { timeout: 100, signal: shutdown.signal };
 * try {
 *   await app.asyncResult<number>(crypto.randomUUID()).get(options);
 * } catch (err) {
 *   if (!(err instanceof TimeoutError)) throw err;
 *   console.log("no result within 100 ms"); // no worker runs here
 * }
 * await app.close();
 * ```
 */
export interface GetOptions {
  /**
   * Give up waiting after this many **milliseconds** (not seconds, as
   * Celery's `get(timeout=10)`: write `{ timeout: 10_000 }` for 10 s) with a
   * {@link TimeoutError}.
   * It bounds the wait for the result, not the reading of one stored
   * already: as Celery's `get(timeout=0)`, `{ timeout: 0 }` returns a
   * finished task's result. Default: wait forever.
   */
  timeout?: number;
  /** Stop waiting when aborted (rejects with the signal's reason; a stored result is still read). */
  signal?: AbortSignal;
  /**
   * Called with each state stored before the task finishes (STARTED,
   * RETRY, PROGRESS and other custom states), pushed by the backend as it
   * is stored — Celery's `get(on_message=...)`. A listener that throws ends
   * the wait with its error.
   */
  onProgress?: (update: TaskUpdate) => void;
  /**
   * In a chain, also watch the earlier steps (the `parent` links) and throw
   * the earliest one's error as soon as one fails or is revoked, as Celery's
   * `get(follow_parents=True)`. A group before the task (a chord's header)
   * is passed over: the chord's body holds its `ChordError`. For a group,
   * applies to each member that is a chain. Default: true; false waits for
   * the task's own state only.
   */
  followParents?: boolean;
}

/** The names of {@link GetOptions}. */
const OPTION_NAMES = ["timeout", "signal", "onProgress", "followParents"];

/**
 * Throw when `get()` options are not an object or have a name or a timeout
 * that would make the wait last forever without saying so: `get(100)` (a
 * number, as Python's `get(timeout)`), `{ timout: 100 }`, `{ timeout: "10s" }`.
 *
 * @param options the options as given
 * @param where the method, for the message
 * @throws {TypeError} naming what to write instead
 */
export function checkGetOptions(options: unknown, where: string): void {
  if (typeof options === "number") {
    // Python's get(10) waits 10 s; { timeout: 10 } would wait 10 ms.
    const ms = options * 1000;
    const written = Number.isSafeInteger(ms) ? String(ms).replace(/\B(?=(\d{3})+$)/g, "_") : ms;
    throw new TypeError(
      `${where} takes an options object with the timeout in milliseconds: for ${options} s, as ` +
        `Celery's get(timeout=${options}), write ${where.slice(0, -1)}{ timeout: ${written} })`,
    );
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${where} takes an options object, e.g. { timeout: 10_000 }`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (key === "timeout") {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && value < Infinity)) {
        throw new TypeError(
          `${where}: timeout must be a number of milliseconds (leave it out to wait forever), got ${
            describeValue(value)
          }`,
        );
      }
    } else if (key === "propagate") {
      throw new TypeError(
        `${where} has no option "propagate" (Celery's get(propagate=False)): it throws a ` +
          `task's failure as a TaskError; catch it, or read it without waiting with error()`,
      );
    } else if (!OPTION_NAMES.includes(key)) {
      const near = closestName(key, OPTION_NAMES);
      throw new TypeError(
        `${where} has no option "${key}"${
          near ? ` (did you mean "${near}"?)` : ""
        }: the options are ${OPTION_NAMES.join(", ")}`,
      );
    }
  }
}
