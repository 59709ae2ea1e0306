/**
 * The signal names a Celery 5.2 worker's `revoke(terminate=True)` accepts
 * (`celery.platforms.signals.signum`): upper case, with or without `SIG`.
 * It refuses any other with an error reply and leaves the task running, so
 * Celeriac's senders and worker refuse them too.
 *
 * @module
 */

const SIGNAL_NAME =
  /^(SIG)?(HUP|INT|QUIT|ILL|TRAP|ABRT|IOT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|CHLD|CONT|STOP|TSTP|TTIN|TTOU|URG|XCPU|XFSZ|VTALRM|PROF|WINCH|IO|POLL|PWR|SYS)$/;

/**
 * Whether `value` names a signal as Celery's `signum()` reads it: `SIGTERM`,
 * `TERM`, `SIGKILL`, … (upper case).
 *
 * @example
 * ```ts
 * import { isSignalName } from "./signal_names.ts";
 * isSignalName("SIGKILL"); // true
 * isSignalName("KILL"); // true
 * isSignalName("SIGFOO"); // false
 * isSignalName("sigterm"); // false
 * ```
 *
 * @param value the signal as given
 * @returns true for a signal's name
 */
export function isSignalName(value: unknown): value is string {
  return typeof value === "string" && SIGNAL_NAME.test(value);
}

const LINUX_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  IOT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  POLL: 29,
  PWR: 30,
  SYS: 31,
};

/**
 * The number of a signal as a `terminate` gives it (a name {@link isSignalName}
 * accepts, or a number from Python), as Linux numbers it: what a Celery
 * worker on Linux reports in `task-revoked`'s `signum`. Anything else is
 * SIGTERM's 15, Celery's default.
 *
 * @example
 * ```ts
 * import { signalNumber } from "./signal_names.ts";
 * signalNumber("SIGKILL"); // 9
 * signalNumber("USR1"); // 10
 * signalNumber(2); // 2
 * signalNumber(undefined); // 15
 * ```
 *
 * @param signal the signal as given
 * @returns its number
 */
export function signalNumber(signal: unknown): number {
  if (typeof signal === "number" && Number.isInteger(signal)) return signal;
  if (!isSignalName(signal)) return LINUX_NUMBERS.TERM;
  return LINUX_NUMBERS[signal.startsWith("SIG") ? signal.slice(3) : signal];
}
