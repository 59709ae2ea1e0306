/**
 * Refusal of call options (`applyAsync`, `sendTask`, `sendMany`,
 * `delayMany`) whose name is no option: a plain-JavaScript caller's typo
 * (`countdwn`) or Celery's snake_case name (`routing_key`) would otherwise be
 * ignored, and the task run at once or sent where it was not meant to go.
 *
 * @module
 */

import { closestName } from "./closest_name.ts";
import type { ApplyOptions } from "./task_options.ts";

/** Every call option, typed against {@link ApplyOptions} so that none can be left out. */
const OPTIONS: Readonly<Record<keyof ApplyOptions, true>> = {
  kwargs: true,
  taskId: true,
  countdown: true,
  eta: true,
  expires: true,
  priority: true,
  queue: true,
  exchange: true,
  routingKey: true,
  headers: true,
  shadow: true,
  ignoreResult: true,
  timeLimit: true,
  softTimeLimit: true,
  serializer: true,
  compression: true,
  retry: true,
  retryPolicy: true,
};
const NAMES = Object.keys(OPTIONS) as (keyof ApplyOptions)[];

/**
 * Throw when call options are not an object or name something that is no
 * call option, naming the closest one.
 *
 * @example
 * ```ts
 * checkCallOptions({ countdwn: 5 }, "tasks.add");
 * // TypeError: call options of "tasks.add" have no option "countdwn" (did you mean "countdown"?) ...
 * ```
 *
 * @param options the call options as given
 * @param task the task name, for the message
 * @throws {TypeError} naming the option and what to write instead
 */
export function checkCallOptions(options: unknown, task: string): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `call options of "${task}" must be an object, e.g. { countdown: 5, queue: "math" }; got ${
        Array.isArray(options) ? "an array" : options === null ? "null" : typeof options
      }`,
    );
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(OPTIONS, key)) continue;
    const guess = closestOptionName(key, NAMES);
    throw new TypeError(
      `call options of "${task}" have no option "${key}"${
        guess ? ` (did you mean "${guess}"?)` : ""
      }: the options are ${NAMES.join(", ")}`,
    );
  }
}

/**
 * The option a mistyped option name meant: the camelCase form of Celery's
 * snake_case name (`routing_key` → `routingKey`), else the closest name.
 *
 * @example
 * ```ts
 * closestOptionName("countdwn", ["countdown", "queue"]); // "countdown"
 * closestOptionName("soft_time_limit", ["softTimeLimit"]); // "softTimeLimit"
 * ```
 *
 * @param key the name as given
 * @param names the option names
 * @returns the option meant, or `undefined`
 */
export function closestOptionName(key: string, names: readonly string[]): string | undefined {
  const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return names.find((n) => n === camel) ?? closestName(key, names);
}
