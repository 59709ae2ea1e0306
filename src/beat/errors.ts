/**
 * Errors of the beat scheduler.
 *
 * @module
 */

/**
 * A schedule entry (or a schedule) is invalid. Names the entry and the field.
 *
 * @example Reporting a bad entry
 * ```ts
 * import { BeatEntryError } from "@celeriac/celeriac";
 * import { compileEntry } from "@celeriac/celeriac/protocol";
 * try {
 *   compileEntry("tick", { task: "tasks.tick", schedule: -5 }, "UTC");
 * } catch (err) {
 *   if (err instanceof BeatEntryError) console.error(err.entry, err.field, err.message);
 * }
 * ```
 */
export class BeatEntryError extends TypeError {
  /** Stable code for programmatic checks. */
  readonly code: string = "BEAT_ENTRY_INVALID";
  /** The entry name, or `null` for a schedule checked on its own. */
  readonly entry: string | null;
  /** The field at fault, e.g. `schedule`, `schedule.minute`, `args`. */
  readonly field: string;

  /**
   * Describe an invalid entry.
   *
   * @param entry the entry name, or `null`
   * @param field the field at fault
   * @param problem what is wrong and what to write instead
   */
  constructor(entry: string | null, field: string, problem: string) {
    super(entry === null ? `${field}: ${problem}` : `beat entry "${entry}", ${field}: ${problem}`);
    this.name = "BeatEntryError";
    this.entry = entry;
    this.field = field;
  }
}

/**
 * Beat cannot work with the store it was given (an `amqp://` broker with no
 * `beatStore`, or an unsupported URL).
 *
 * @example
 * ```ts
 * import { Beat, BeatStoreError, Celery } from "@celeriac/celeriac";
 * const beat = new Beat({ app: new Celery({ broker: "amqp://guest:guest@127.0.0.1:5672//" }) });
 * try {
 *   await beat.start();
 * } catch (err) {
 *   if (err instanceof BeatStoreError) console.error(err.message); // says what to set
 * }
 * ```
 */
export class BeatStoreError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BEAT_STORE_UNSUITABLE";

  /**
   * Describe an unsuitable store.
   *
   * @param message what is wrong and what to set
   */
  constructor(message: string) {
    super(message);
    this.name = "BeatStoreError";
  }
}
