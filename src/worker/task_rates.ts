/**
 * A worker's task rate limits: those its tasks are defined with, those set
 * at run time (the remote `rate_limit` command), and how the `registered`
 * inspect reply shows them (`registered_tasks.ts`). The limiter that makes tasks wait for a token
 * is in `rate_limit.ts`.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { parseRate } from "../protocol/rate.ts";
import type { RateLimiter } from "./rate_limit.ts";

/**
 * The rate limits of the tasks a worker runs, kept in its limiter.
 *
 * @example
 * ```ts ignore
 * const rates = new TaskRates(app, intake.limiter); // the tasks' rateLimit options
 * rates.set("tasks.scrape", "5/s");
 * rates.rate("tasks.scrape"); // 5
 * rates.text("tasks.scrape"); // "5/s"
 * ```
 */
export class TaskRates {
  readonly #app: Celery;
  readonly #limiter: Pick<RateLimiter<unknown>, "setRate" | "rate">;
  /** Rate limits set at run time, as given (for `registered`). */
  readonly #text = new Map<string, string>();

  /**
   * Apply the rate limits the app's tasks are defined with.
   *
   * @param app the app whose tasks the worker runs
   * @param limiter where the limits take effect
   * @throws {TypeError} for a malformed `rateLimit` option
   */
  constructor(app: Celery, limiter: Pick<RateLimiter<unknown>, "setRate" | "rate">) {
    this.#app = app;
    this.#limiter = limiter;
    for (const task of app.tasks.values()) {
      const limit = task.options.rateLimit;
      if (limit !== undefined) {
        limiter.setRate(task.name, parseRate(limit, `rateLimit of task "${task.name}"`));
      }
    }
  }

  /**
   * Change a task's rate limit; `null` removes it.
   *
   * @param name a task the worker runs
   * @param rate `"10/s"`, `"100/m"`, `"1000/h"`, a number per second; `null` or 0 for none
   * @throws {TypeError} for an unknown task or a malformed rate
   */
  set(name: string, rate: string | number | null): void {
    if (!this.#app.tasks.get(name)?.handler) {
      throw new TypeError(`Cannot set the rate limit of "${name}": this worker does not run it`);
    }
    this.#limiter.setRate(name, rate === null ? null : parseRate(rate, "rate"));
    if (rate === null) this.#text.delete(name);
    else this.#text.set(name, String(rate));
  }

  /**
   * A task's rate limit in runs per second, or `null` without one.
   *
   * @param name task name
   * @returns the rate
   */
  rate(name: string): number | null {
    return this.#limiter.rate(name);
  }

  /**
   * A task's rate limit as set or defined (`"5/s"`, as given), for the
   * `registered` reply.
   *
   * @param name task name
   * @returns the text, or `null` without a limit
   */
  text(name: string): string | null {
    const rate = this.rate(name);
    if (rate === null) return null;
    return this.#text.get(name) ??
      String(this.#app.tasks.get(name)?.options.rateLimit ?? `${rate}/s`);
  }
}
