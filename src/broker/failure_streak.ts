/**
 * The failed turns of a loop that reads again after a failure (the KV
 * result watch, the KV reader of remote-control replies): how long to
 * pause before the next turn, and what to log, once per streak of
 * failures rather than once per turn.
 *
 * @module
 */

/**
 * What a {@link FailureStreak} reports.
 *
 * @example
 * ```ts
 * import type { StreakReport } from "./failure_streak.ts";
 * const report: StreakReport = {
 *   failing: (cause) => console.error(`Cannot read, trying again: ${cause}`),
 *   recovered: (failures) => console.info(`Reading again after ${failures} failed read(s)`),
 * };
 * ```
 */
export interface StreakReport {
  /** A streak began with a failure for `cause`, or went on with a cause other than the last reported. */
  failing(cause: string): void;
  /** A turn succeeded after `failures` failed ones in a row. */
  recovered(failures: number): void;
}

/**
 * Pauses of a {@link FailureStreak}.
 *
 * @example
 * ```ts
 * import type { StreakPauses } from "./failure_streak.ts";
 * const pauses: StreakPauses = { firstMs: 50, maxMs: 2000 };
 * ```
 */
export interface StreakPauses {
  /** Milliseconds paused after the first failure of a streak; each further one doubles it. Default 100. */
  firstMs?: number;
  /** The longest pause, in milliseconds. Default 1000. */
  maxMs?: number;
}

/**
 * Counts a loop's failed turns in a row. The first failure of a streak is
 * reported with its cause (a later one only when its cause differs from
 * the last reported), the first success after a streak once; the pause
 * before the next turn doubles with each failure, up to a cap, so that a
 * read that keeps failing (an I/O error, a locked or full disk) neither
 * spins nor floods the log.
 *
 * @example
 * ```ts
 * import { FailureStreak } from "./failure_streak.ts";
 * import { sleep } from "./sleep.ts";
 * const streak = new FailureStreak({
 *   failing: (cause) => console.error(`Cannot read, trying again: ${cause}`),
 *   recovered: (failures) => console.info(`Reading again after ${failures} failed read(s)`),
 * });
 * await sleep(streak.failed(new Error("database is locked"))); // 100 ms, logged
 * await sleep(streak.failed(new Error("database is locked"))); // 200 ms, not logged
 * streak.succeeded(); // "Reading again after 2 failed read(s)"
 * ```
 */
export class FailureStreak {
  readonly #report: StreakReport;
  readonly #firstMs: number;
  readonly #maxMs: number;
  #failures = 0;
  #cause = "";

  /**
   * @param report what is told of the streak
   * @param pauses the pauses between failed turns
   */
  constructor(report: StreakReport, pauses: StreakPauses = {}) {
    this.#report = report;
    this.#firstMs = pauses.firstMs ?? 100;
    this.#maxMs = pauses.maxMs ?? 1000;
  }

  /**
   * A turn failed.
   *
   * @param err what it failed with
   * @returns the milliseconds to pause before the next turn
   */
  failed(err: unknown): number {
    const cause = String(err);
    if (this.#failures === 0 || cause !== this.#cause) this.#report.failing(cause);
    this.#cause = cause;
    this.#failures++;
    return Math.min(this.#maxMs, this.#firstMs * 2 ** Math.min(this.#failures - 1, 30));
  }

  /** A turn succeeded: reports the end of a streak, if one was under way. */
  succeeded(): void {
    if (this.#failures === 0) return;
    const failures = this.#failures;
    this.#failures = 0;
    this.#cause = "";
    this.#report.recovered(failures);
  }
}
