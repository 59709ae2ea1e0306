/**
 * What the beat loop says when its store fails, and what it keeps running:
 * a store that does not answer (wait for it), told apart from a key of
 * beat's namespace holding the wrong kind of value (the store answers;
 * only repairing the key helps, and the message says how).
 *
 * @module
 */

import { lazyLogger } from "../client/lazy_logger.ts";
import type { BeatEntry } from "../client/beat_config.ts";
import { ScheduleStoreKeyError } from "../broker/schedule_store.ts";
import { compileEntry, type ScheduledEntry } from "./entry.ts";

const log = lazyLogger(["celeriac", "beat"]);

/**
 * One beat loop's store faults: each logged once, until it changes or ends.
 *
 * @example
 * ```ts ignore
 * const faults = new StoreFaults();
 * try {
 *   await step();
 *   faults.stepDone();
 * } catch (err) {
 *   faults.stepFailed(err);
 * }
 * ```
 */
export class StoreFaults {
  /** What stopped the last step, as logged: `unreachable`, or `key <name>`. */
  #step: string | null = null;
  /** The run-time entries' key, while it holds the wrong kind of value. */
  #entriesKey: string | null = null;

  /** Whether the run-time entries cannot be read (their key holds the wrong kind of value). */
  get entriesUnreadable(): boolean {
    return this.#entriesKey !== null;
  }

  /** A step went through: say that the fault last logged is over. */
  stepDone(): void {
    if (this.#step === null) return;
    log.info(
      this.#step === "unreachable"
        ? "beat: schedule store reachable again"
        : "beat: schedule store key repaired",
    );
    this.#step = null;
  }

  /**
   * A step failed: log why, once until it changes. A key of the wrong kind
   * stops every send (the runs hash: a run is recorded before it is sent, so
   * that no two beats send it; the lease or fence: no beat can lead).
   *
   * @param err what the step failed with
   */
  stepFailed(err: unknown): void {
    const keyError = err instanceof ScheduleStoreKeyError;
    const fault = keyError ? `key ${err.key}` : "unreachable";
    if (this.#step === fault) return;
    this.#step = fault;
    if (!keyError) {
      log.error("beat: schedule store unreachable, not sending until it is back: {error}", {
        error: (err as Error).message,
      });
      return;
    }
    log.error("beat: {error}. Until the key is repaired, {effect}", {
      error: err.message,
      effect: err.role === "runs"
        ? "no entry is sent (each run is recorded in that key before it is sent, so that no " +
          "two beats send it)"
        : "no beat can take the lease, so no entry is sent",
    });
  }

  /**
   * The entries in force, from `load`; while the key of the entries added
   * at run time holds the wrong kind of value, those of `config` alone
   * (logged once): they keep running.
   *
   * @param load reads the entries (the app's config overridden by the store)
   * @param config the app's `beatSchedule` and time zone
   * @returns the entries
   * @throws whatever `load` throws, but for the run-time entries' key
   */
  async entries(
    load: () => Promise<ScheduledEntry[]>,
    config: { beatSchedule: Record<string, BeatEntry>; timezone: string },
  ): Promise<ScheduledEntry[]> {
    try {
      const entries = await load();
      if (this.#entriesKey !== null) {
        log.info("beat: schedule store key {key} repaired: entries added at run time run again", {
          key: this.#entriesKey,
        });
        this.#entriesKey = null;
      }
      return entries;
    } catch (err) {
      if (!(err instanceof ScheduleStoreKeyError) || err.role !== "entries") throw err;
      if (this.#entriesKey !== err.key) {
        this.#entriesKey = err.key;
        log.error(
          "beat: {error}. Until the key is repaired, only the entries of the app's beatSchedule " +
            "run, not those added at run time",
          { error: err.message },
        );
      }
      return Object.entries(config.beatSchedule).map(([name, entry]) =>
        compileEntry(name, entry, config.timezone)
      );
    }
  }
}
