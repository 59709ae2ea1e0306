/**
 * The execution options of a signature ({@link SignatureOptions}), Celery's
 * name for each, and their conversion to the options dict a signature
 * carries, checked as a call's options are.
 *
 * @module
 */

import type { CompressionName } from "../../protocol/compression_names.ts";
import type { SerializerName } from "../../protocol/serializers.ts";
import { pyIsoFormat } from "../../protocol/time.ts";
import { checkTaskFields } from "../../protocol/task_fields.ts";
import { closestOptionName } from "../call_option_names.ts";

/**
 * Execution options of a signature, as Celery's `apply_async` keywords
 * (Celery's option names in brackets; they are what the dict carries).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const sig = add.s(2, 2).set({ countdown: 10, queue: "math", priority: 3 });
 * ```
 */
export interface SignatureOptions {
  /** Use this task id [`task_id`]. */
  taskId?: string;
  /** Run no earlier than this many seconds after it is sent [`countdown`]. */
  countdown?: number;
  /** Run no earlier than this time [`eta`]. */
  eta?: Date | string;
  /** Do not run after: seconds from sending, or a time [`expires`]. */
  expires?: number | Date | string;
  /** Queue [`queue`]. */
  queue?: string;
  /** Exchange [`exchange`]. */
  exchange?: string;
  /** Routing key [`routing_key`]. */
  routingKey?: string;
  /** Message priority [`priority`]. */
  priority?: number;
  /** Extra message headers [`headers`]. */
  headers?: Record<string, unknown>;
  /** Hard time limit, seconds [`time_limit`]. */
  timeLimit?: number;
  /** Soft time limit, seconds [`soft_time_limit`]. */
  softTimeLimit?: number;
  /** Display name [`shadow`]. */
  shadow?: string;
  /** Do not store the success result [`ignore_result`]. */
  ignoreResult?: boolean;
  /** Body serializer [`serializer`]. */
  serializer?: SerializerName;
  /** Body compression [`compression`]. */
  compression?: CompressionName;
}

/**
 * Celery's name of each {@link SignatureOptions} option (the key a signature dict carries).
 *
 * @example
 * ```ts
 * SIGNATURE_OPTION_NAMES.routingKey; // "routing_key"
 * ```
 */
export const SIGNATURE_OPTION_NAMES: Readonly<Record<keyof SignatureOptions, string>> = {
  taskId: "task_id",
  countdown: "countdown",
  eta: "eta",
  expires: "expires",
  queue: "queue",
  exchange: "exchange",
  routingKey: "routing_key",
  priority: "priority",
  headers: "headers",
  timeLimit: "time_limit",
  softTimeLimit: "soft_time_limit",
  shadow: "shadow",
  ignoreResult: "ignore_result",
  serializer: "serializer",
  compression: "compression",
};

/**
 * Celery option names for {@link SignatureOptions} (dates as ISO text),
 * the values checked as a call's are (task_fields.ts).
 *
 * @example
 * ```ts
 * celeryOptions({ taskId: "x", timeLimit: 5 }, "tasks.add"); // { task_id: "x", time_limit: 5 }
 * ```
 *
 * @param options typed options
 * @param task the signature's task name, for the messages
 * @returns the options dict a signature carries
 * @throws {TypeError} for a name that is no option (naming the closest) or a value of the wrong type
 * @throws {RangeError} for a value out of range (a priority of 256, a countdown of 1e12 s)
 */
export function celeryOptions(options: SignatureOptions, task: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const name = SIGNATURE_OPTION_NAMES[k as keyof SignatureOptions];
    if (name === undefined) {
      const known = Object.keys(SIGNATURE_OPTION_NAMES);
      const guess = closestOptionName(k, known);
      throw new TypeError(
        `Unknown signature option "${k}"${
          guess ? ` (did you mean "${guess}"?)` : ""
        }; expected one of ${known.join(", ")}`,
      );
    }
    out[name] = v instanceof Date ? pyIsoFormat(v, "+00:00") : v;
  }
  checkTaskFields(options, task);
  return out;
}
