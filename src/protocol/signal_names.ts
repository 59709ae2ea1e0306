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
