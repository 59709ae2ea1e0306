/**
 * Logging set-up for the command line (a library never configures logging).
 *
 * @module
 */

import { configure, dispose } from "@logtape/logtape";
import { logSink, type LogSinkOptions } from "./log_output.ts";
import { UsageError } from "./exit_codes.ts";

/**
 * Log levels, lowest first (Celery's CRITICAL is `fatal`).
 *
 * @example Logging at a level taken from the environment
 * ```ts
 * import { type LogLevel, parseLogLevel } from "@celeriac/celeriac/worker";
 * const level: LogLevel = parseLogLevel(Deno.env.get("CELERY_LOG_LEVEL") ?? "INFO");
 * if (level === "debug") console.log("debug logging on");
 * ```
 */
export type LogLevel = "debug" | "info" | "warning" | "error" | "fatal";

const LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  warning: "warning",
  warn: "warning",
  error: "error",
  critical: "fatal",
  fatal: "fatal",
};

/**
 * Celery's log level names, as `--loglevel` takes them (any case).
 *
 * @example
 * ```ts
 * LOG_LEVEL_NAMES.join(", "); // "DEBUG, INFO, WARNING, ERROR, CRITICAL"
 * ```
 */
export const LOG_LEVEL_NAMES: readonly string[] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/**
 * Map a Celery log level name (`DEBUG`, `INFO`, `WARNING`, `ERROR`,
 * `CRITICAL`) to LogTape's.
 *
 * @example
 * ```ts
 * import { parseLogLevel } from "@celeriac/celeriac/worker";
 * parseLogLevel("WARNING"); // "warning"
 * ```
 *
 * @param name the level name, any case
 * @returns the LogTape level
 * @throws {UsageError} for an unknown name
 */
export function parseLogLevel(name: string): LogLevel {
  const level = LEVELS[name.toLowerCase()];
  if (!level) {
    throw new UsageError(`Unknown log level "${name}": use ${LOG_LEVEL_NAMES.join(", ")}`);
  }
  return level;
}

/**
 * Send Celeriac's log records at `level` and above to the console, or to
 * `options.logfile`, as text or as JSON Lines (`options.format`). The
 * worker's per-task lines (category `celeriac.worker.task`: "received",
 * "succeeded", ...) go at `taskLevel` and above.
 *
 * @example
 * ```ts
 * import { closeLogging, setupLogging } from "@celeriac/celeriac/worker";
 * await setupLogging("info", { format: "json", logfile: "worker.log" });
 * // … run …
 * await closeLogging(); // flush the file
 * ```
 *
 * @param level lowest level shown
 * @param options format, log file and JSON fields; default: text on the console
 * @param taskLevel lowest level of the per-task lines; default `level`
 */
export async function setupLogging(
  level: LogLevel,
  options: LogSinkOptions = {},
  taskLevel: LogLevel = level,
): Promise<void> {
  await configure({
    reset: true,
    sinks: { out: await logSink(options) },
    loggers: [
      { category: ["celeriac"], lowestLevel: level, sinks: ["out"] },
      {
        category: ["celeriac", "worker", "task"],
        lowestLevel: taskLevel,
        sinks: ["out"],
        parentSinks: "override",
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/**
 * The levels the command line logs at: `--loglevel` for everything when
 * given; without it, INFO for the worker's own lines (start, ready,
 * shutdown) and WARNING for the per-task lines — Celery's worker runs at
 * WARNING by default and logs "received"/"succeeded" at INFO, and two lines
 * per task cost about half the drain throughput of a fast worker.
 *
 * @example
 * ```ts
 * import { cliLogLevels } from "@celeriac/celeriac/worker";
 * cliLogLevels(undefined); // { level: "info", taskLevel: "warning" }
 * cliLogLevels("INFO"); // { level: "info", taskLevel: "info" }
 * ```
 *
 * @param loglevel the `--loglevel` value, if given
 * @returns the level of the CLI's and worker's lines, and of the per-task lines
 * @throws {UsageError} for an unknown level name
 */
export function cliLogLevels(
  loglevel: string | undefined,
): { level: LogLevel; taskLevel: LogLevel } {
  if (loglevel === undefined) return { level: "info", taskLevel: "warning" };
  const level = parseLogLevel(loglevel);
  return { level, taskLevel: level };
}

/**
 * Flush and close what {@link setupLogging} opened (a log file's buffer).
 *
 * @example
 * ```ts
 * import { closeLogging, setupLogging } from "@celeriac/celeriac/worker";
 * await setupLogging("info", { logfile: "worker.log" });
 * await closeLogging();
 * ```
 */
export async function closeLogging(): Promise<void> {
  await dispose();
}
