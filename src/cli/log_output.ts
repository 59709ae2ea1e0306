/**
 * Where and how the command line writes log records: plain text or JSON
 * Lines (one object per record, through LogTape's JSON Lines formatter) to
 * the console or to a file (`@logtape/file`'s buffered file sink). Text keeps a
 * logged stack trace's line breaks, as Celery's tracebacks read.
 *
 * @module
 */

import {
  getConsoleSink,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogRecord,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import { jsonText } from "../protocol/json.ts";
import { UsageError } from "./exit_codes.ts";

/**
 * Log output formats: `text` for people, `json` for log collectors.
 *
 * @example
 * ```ts
 * import type { LogFormat } from "@celeriac/celeriac/worker";
 * const format: LogFormat = Deno.env.get("LOG_JSON") ? "json" : "text";
 * ```
 */
export type LogFormat = "text" | "json";

/**
 * Fields added to every JSON record. The CLI sets `hostname` to the worker's
 * node name once the worker exists.
 *
 * @example
 * ```ts
 * import type { LogFields } from "@celeriac/celeriac/worker";
 * const fields: LogFields = { hostname: "celeriac@web1" };
 * ```
 */
export interface LogFields {
  /** The node name, e.g. `celeriac@web1`. */
  hostname: string;
}

/**
 * The `--log-format` values.
 *
 * @example
 * ```ts
 * LOG_FORMATS; // ["text", "json"]
 * ```
 */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/**
 * Check a `--log-format` value.
 *
 * @example
 * ```ts
 * import { parseLogFormat } from "@celeriac/celeriac/worker";
 * parseLogFormat("json"); // "json"
 * ```
 *
 * @param value `text` or `json`, any case
 * @returns the format
 * @throws {UsageError} for anything else
 */
export function parseLogFormat(value: string): LogFormat {
  const format = value.toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--log-format must be "text" or "json", got "${value}"`);
  }
  return format as LogFormat;
}

/**
 * The record's properties with the task it is about as `task_id` and
 * `task_name` first: `taskId` / `taskName` anywhere, and the `{name}[{id}]`
 * pair of the worker's task lines.
 */
function taskFields(record: LogRecord): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...record.properties };
  const worker = record.category[1] === "worker" && "id" in rest && "name" in rest;
  const take = (key: string) => {
    const value = rest[key];
    delete rest[key];
    return value;
  };
  const taskId = "taskId" in rest ? take("taskId") : worker ? take("id") : undefined;
  const taskName = "taskName" in rest ? take("taskName") : worker ? take("name") : undefined;
  return {
    ...(taskId !== undefined ? { task_id: taskId } : {}),
    ...(taskName !== undefined ? { task_name: taskName } : {}),
    ...rest,
  };
}

/**
 * A JSON Lines formatter: `@timestamp`, `level`, `message` (rendered),
 * `logger`, then `hostname`, `task_id` and `task_name` (Celery's names, when
 * the record is about a task), then the record's other properties.
 *
 * @example
 * ```ts
 * import { jsonLogFormatter } from "./log_output.ts";
 * const format = jsonLogFormatter({ hostname: "celeriac@web1" });
 * const line = format({
 *   category: ["celeriac", "worker"], level: "info", timestamp: 0,
 *   message: ["Task ", "tasks.add", "[", "t1", "] received"],
 *   rawMessage: "Task {name}[{id}] received", properties: { name: "tasks.add", id: "t1" },
 * });
 * // {"@timestamp":"1970-01-01T00:00:00.000Z","level":"INFO","message":"Task tasks.add[t1] received",
 * //  "logger":"celeriac.worker","hostname":"celeriac@web1","task_id":"t1","task_name":"tasks.add"}
 * console.assert(JSON.parse(line).task_id === "t1");
 * ```
 *
 * @param fields added to every record; read at each record, so they may change
 * @returns the formatter
 */
export function jsonLogFormatter(fields: LogFields): TextFormatter {
  const lines = getJsonLinesFormatter({ properties: "flatten" });
  return (record) =>
    lines({
      ...record,
      message: [renderMessage(record.message)],
      properties: { hostname: fields.hostname, ...taskFields(record) },
    });
}

/** The message as the text format shows it: strings bare, objects as JSON. */
function renderMessage(parts: readonly unknown[]): string {
  return parts.map((part, i) => {
    if (i % 2 === 0 || typeof part === "string") return String(part);
    if (typeof part === "object" && part !== null) {
      try {
        return jsonText(part);
      } catch {
        return String(part);
      }
    }
    return String(part);
  }).join("");
}

/**
 * Options of {@link logSink}.
 *
 * @example
 * ```ts
 * import type { LogSinkOptions } from "@celeriac/celeriac/worker";
 * const options: LogSinkOptions = { format: "json", logfile: "worker.log" };
 * ```
 */
export interface LogSinkOptions {
  /** Output format. Default `text`. */
  format?: LogFormat;
  /** Append to this file instead of writing to the console. */
  logfile?: string;
  /** Fields of JSON records. Default: `hostname` is the machine's host name. */
  fields?: LogFields;
}

/**
 * The sink that writes records as asked: to the console, or appended to a
 * file (buffered, flushed at least every second and when LogTape is disposed).
 * `@logtape/file` is imported only for a file: with the Node compatibility
 * modules it needs (`node:fs`, streams) it costs a worker ~4 MiB.
 *
 * @example
 * ```ts
 * import { configure } from "@logtape/logtape";
 * import { logSink } from "./log_output.ts";
 * await configure({
 *   sinks: { out: await logSink({ format: "json", logfile: "worker.log" }) },
 *   loggers: [{ category: ["celeriac"], lowestLevel: "info", sinks: ["out"] }],
 * });
 * ```
 *
 * @param options format and destination
 * @returns the sink
 * @throws {UsageError} naming `--logfile` when the file cannot be opened for appending (only
 *   then: another failure, of logging's own setup, is not the flag's)
 */
export async function logSink(options: LogSinkOptions = {}): Promise<Sink> {
  const formatter = options.format === "json"
    ? jsonLogFormatter(options.fields ?? { hostname: Deno.hostname() })
    // Line breaks kept (a stack trace reads as Celery's tracebacks do; the "bare" preset escapes
    // them unless told), other control characters still escaped; JSON escapes them itself.
    : getTextFormatter({
      timestamp: "date-time",
      value: "bare",
      sanitize: { newlines: "preserve" },
    });
  if (options.logfile !== undefined) {
    // Non-blocking: a timer flushes what is buffered every second. The blocking sink flushes
    // only when the next record is written, so a quiet worker's last lines (its "ready") stayed
    // in memory until it logged again or exited.
    const { getFileSink } = await import("@logtape/file");
    try {
      return getFileSink(options.logfile, { formatter, flushInterval: 1000, nonBlocking: true });
    } catch (err) {
      throw logfileRefused(err as Error, options.logfile);
    }
  }
  return getConsoleSink({ formatter });
}

/**
 * `--logfile` that cannot be opened for appending, as a usage error naming
 * the flag (it was `error: No such file or directory (os error 2): open
 * '…'`, exit 1), and the directory to create when that is what is missing.
 * Logging is not set up yet: the error goes to the console.
 */
function logfileRefused(err: Error, logfile: string): UsageError {
  const slash = logfile.lastIndexOf("/");
  const dir = slash > 0 ? logfile.slice(0, slash) : slash === 0 ? "/" : ".";
  let noDir = false;
  try {
    Deno.statSync(dir);
  } catch (statErr) {
    noDir = statErr instanceof Deno.errors.NotFound;
  }
  return new UsageError(
    `--logfile ${logfile}: cannot open it for appending: ${err.message}` +
      (noDir ? ` (create its directory, ${dir}, first)` : ""),
    { cause: err },
  );
}
