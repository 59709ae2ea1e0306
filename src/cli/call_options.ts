/**
 * The send options of `call`, read from its flags as Celery's `celery call`
 * reads them: `-a/--args`, `-k/--kwargs`, `--countdown`, `--eta`,
 * `--expires`, `--serializer`, `--queue`, `--exchange`, `--routing-key`. A
 * time without a zone (`--eta 2030-01-01T12:00:00`) is UTC, as the worker
 * and `applyAsync` read it, whatever the zone of the machine running `call`.
 *
 * @module
 */

import type { ApplyOptions } from "../client/task_options.ts";
import { parsePyDate } from "../protocol/time.ts";
import type { SerializerName } from "../protocol/serializers.ts";
import { UsageError } from "./exit_codes.ts";
import { jsonFlag } from "./flag_json.ts";

/**
 * The serializers `call --serializer` takes.
 *
 * @example
 * ```ts ignore
 * SERIALIZERS.includes("msgpack"); // true
 * ```
 */
export const SERIALIZERS: readonly SerializerName[] = ["json", "msgpack"];

/** What `call` sends: the arguments and the options for `sendTask`. */
export interface CallSend {
  /** Positional arguments (`--args`); default none. */
  args: unknown[];
  /** The options for `sendTask`: kwargs, times, serializer, queue, exchange, routing key. */
  options: ApplyOptions & { kwargs: Record<string, unknown>; eta?: Date };
}

/**
 * An ISO 8601 time from the command line; one without a zone is UTC
 * (`2030-01-01T12:00:00` is 12:00 UTC), as Celery's worker reads it.
 *
 * @example
 * ```ts ignore
 * isoFlag("2030-01-01T12:00:00", "--eta").toISOString(); // "2030-01-01T12:00:00.000Z"
 * isoFlag("2030-01-01T12:00:00+01:00", "--eta").toISOString(); // "2030-01-01T11:00:00.000Z"
 * ```
 *
 * @param value the flag's value
 * @param flag the flag, for the message
 * @returns the instant
 * @throws {UsageError} when the value is no ISO 8601 time
 */
export function isoFlag(value: string, flag: string): Date {
  const date = /^\d{4}-\d\d-\d\d/.test(value.trim()) ? parsePyDate(value.trim()) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `${flag} needs an ISO 8601 time such as 2030-01-01T12:00:00 (UTC without a zone) or ` +
        `2030-01-01T12:00:00+01:00, got "${value}"`,
    );
  }
  return date;
}

/**
 * `--expires`: seconds from now, or an ISO 8601 time (UTC without a zone),
 * as Celery's `celery call --expires` takes.
 */
function expiresFlag(value: string | undefined): number | Date | undefined {
  if (value === undefined) return undefined;
  const seconds = value.trim() === "" ? NaN : Number(value);
  if (Number.isFinite(seconds)) return seconds;
  try {
    return isoFlag(value, "--expires");
  } catch {
    throw new UsageError(
      `--expires needs seconds from now (--expires 60) or an ISO 8601 time ` +
        `(--expires 2030-01-01T12:00:00, UTC without a zone), got "${value}"`,
    );
  }
}

function stringFlag(value: string | boolean | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`${flag} needs a name, got "${String(value)}"`);
  }
  return value;
}

/**
 * Read `call`'s send flags.
 *
 * @example
 * ```ts ignore
 * callSend({ args: "[2, 3]", eta: "2030-01-01T12:00:00", serializer: "msgpack" });
 * // { args: [2, 3], options: { kwargs: {}, eta: 2030-01-01T12:00:00.000Z, serializer: "msgpack" } }
 * ```
 *
 * @param values the parsed flags
 * @returns the arguments and the send options
 * @throws {UsageError} for a value that is not JSON of the right shape, a time or number of
 *   seconds that does not parse, or a serializer Celeriac does not have
 */
export function callSend(values: Record<string, string | boolean | undefined>): CallSend {
  const args = values.args === undefined ? [] : jsonFlag(values.args, "--args");
  const kwargs = values.kwargs === undefined ? {} : jsonFlag(values.kwargs, "--kwargs");
  if (!Array.isArray(args)) throw new UsageError("--args must be a JSON list");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new UsageError("--kwargs must be a JSON object");
  }
  const countdown = values.countdown === undefined ? undefined : Number(values.countdown);
  if (countdown !== undefined && !Number.isFinite(countdown)) {
    throw new UsageError(`--countdown needs seconds, got "${values.countdown}"`);
  }
  const eta = values.eta === undefined ? undefined : isoFlag(String(values.eta), "--eta");
  const serializer = values.serializer as string | undefined;
  if (serializer !== undefined && !(SERIALIZERS as readonly string[]).includes(serializer)) {
    throw new UsageError(
      `--serializer must be ${SERIALIZERS.join(" or ")}, got "${serializer}" (Celeriac ` +
        "has no pickle or yaml)",
    );
  }
  const options: CallSend["options"] = { kwargs: kwargs as Record<string, unknown> };
  const set = {
    countdown,
    eta,
    expires: expiresFlag(values.expires as string | undefined),
    serializer: serializer as SerializerName | undefined,
    queue: values.queue as string | undefined,
    exchange: stringFlag(values.exchange, "--exchange"),
    routingKey: stringFlag(values["routing-key"], "--routing-key"),
  };
  for (const [key, value] of Object.entries(set)) {
    if (value !== undefined) Object.assign(options, { [key]: value });
  }
  return { args, options };
}
