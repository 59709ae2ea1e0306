/**
 * The exit statuses of the `worker.ts` command line: one scheme for every
 * command, close to Python Celery's (click's usage errors exit 2, no worker
 * replying exits 69, EX_UNAVAILABLE), so that a script or a cron job can
 * tell a failed task from a broker that is down or a mistyped flag.
 *
 * @module
 */

import { BrokerConnectionError } from "../broker/errors.ts";
import { BeatStoreError } from "../beat/errors.ts";

/**
 * The exit statuses of the command line (the README's "Exit codes" table).
 *
 * @example
 * ```ts
 * import { EXIT_CODES, main } from "@celeriac/celeriac/worker";
 * const code = await main(["result", "5c0e4e3a-…", "-b", "redis://127.0.0.1:6379/0"]);
 * if (code === EXIT_CODES.noResult) console.error("no result yet: try again later");
 * ```
 */
export const EXIT_CODES = {
  /** Done: the result printed, the replies printed, a worker stopped by a signal. */
  ok: 0,
  /**
   * The task failed or was revoked (`result`, `call --wait`); a worker answered a control
   * command with an error; `purge` was declined. `worker`, `beat`, `dashboard`: stopped on an
   * error (their broker unreachable after the retries, a wrong password, a bad entry …).
   */
  failed: 1,
  /**
   * The command line is wrong: an unknown flag or command, a bad value (a `--broker` URL of no
   * supported scheme too), flags that do not go together, a missing argument, a beat store
   * beat cannot use (an `amqp://` broker without `--beat-store`).
   */
  usage: 2,
  /** `result`, `call --wait`: no result within `--timeout` (the task may still finish). */
  noResult: 3,
  /**
   * The broker or result backend could not be reached or refused the connection, or no worker
   * replied (`inspect`, `control`, `status`, `report`): Celery's EX_UNAVAILABLE.
   */
  unavailable: 69,
  /**
   * Any other error, the message says what: a setting it cannot use (an unsupported URL
   * scheme in the app's config or environment: as `-b` it is a usage error), something the
   * app's code threw, a bug (Celery's EX_SOFTWARE).
   */
  internal: 70,
  /** `worker`: stopped for leaked threads, to be started again (EX_TEMPFAIL). */
  leakedThreads: 75,
} as const;

/**
 * A mistake on the command line: an unknown or mistyped value, a missing
 * argument, an `--app` that names no usable module. The command exits with
 * {@link EXIT_CODES}`.usage` (2), as Celery's click usage errors do. A
 * `TypeError`, so code that checks for one still catches it.
 *
 * @example
 * ```ts
 * import { UsageError } from "@celeriac/celeriac/worker";
 * const err = new UsageError('--countdown needs seconds, got "soon"');
 * console.assert(err.code === "CLI_USAGE" && err instanceof TypeError);
 * ```
 */
export class UsageError extends TypeError {
  /** Stable code for programmatic checks. */
  readonly code: string = "CLI_USAGE";

  /**
   * Describe the mistake.
   *
   * @param message what is wrong and what to write instead
   * @param options the error that revealed it, if any
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * Read a flag's value with a parser of the library (`parseAutoscale`,
 * `parseTaskPermissions`, `validateAuth` …), whose TypeError or RangeError
 * says the value is wrong: thrown again as a {@link UsageError}, so that the
 * command exits 2 and not 1 or 70. Only for pure parsers of the value:
 * anything they throw is about what was typed.
 *
 * @example
 * ```ts
 * import { parseAutoscale } from "@celeriac/celeriac/worker";
 * const range = flagValue(() => parseAutoscale("10,3")); // "x": a UsageError
 * ```
 *
 * @param parse reads the value
 * @returns what it read
 * @throws {UsageError} with the parser's message (and its error as the cause)
 */
export function flagValue<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      throw new UsageError(err.message, { cause: err });
    }
    throw err;
  }
}

/** Commands that run until stopped; an error stops them with status 1, as documented. */
const LONG_RUNNING = new Set(["worker", "beat", "dashboard"]);

/** Whether the error, or one that caused it, says the broker or result backend is unusable. */
function unreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof BrokerConnectionError) return true;
  }
  return false;
}

/**
 * The exit status for an error that stopped a command: {@link UsageError}
 * and a beat store beat cannot use (`BeatStoreError`) 2; for `worker`, `beat` and `dashboard` any other 1; for the others a
 * broker or result backend that could not be used 69, anything else 70.
 *
 * @example
 * ```ts
 * import { UsageError } from "@celeriac/celeriac/worker";
 * exitCodeFor(new UsageError("--limit needs a whole number"), "parked"); // 2
 * ```
 *
 * @param err what the command threw
 * @param command the subcommand (`worker` when none was given)
 * @returns the exit status
 */
export function exitCodeFor(err: unknown, command: string): number {
  // A beat store it cannot use (an amqp:// broker and no --beat-store): a setting to change,
  // the same 2 from beat, worker -B and schedule.
  if (err instanceof UsageError || err instanceof BeatStoreError) return EXIT_CODES.usage;
  if (LONG_RUNNING.has(command)) return EXIT_CODES.failed;
  return unreachable(err) ? EXIT_CODES.unavailable : EXIT_CODES.internal;
}
