/**
 * Logging set-up for the command line (a library never configures logging).
 *
 * @module
 */

import { configure, dispose } from "@logtape/logtape";
import { logSink, type LogSinkOptions } from "./log_output.ts";

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
 * @throws {TypeError} for an unknown name
 */
export function parseLogLevel(name: string): LogLevel {
  const level = LEVELS[name.toLowerCase()];
  if (!level) {
    throw new TypeError(`Unknown log level "${name}": use DEBUG, INFO, WARNING, ERROR or CRITICAL`);
  }
  return level;
}

/**
 * Send Celeriac's log records at `level` and above to the console, or to
 * `options.logfile`, as text or as JSON Lines (`options.format`).
 *
 * @example
 * ```ts ignore
 * await setupLogging("info", { format: "json", logfile: "worker.log" });
 * // … run …
 * await closeLogging(); // flush the file
 * ```
 *
 * @param level lowest level shown
 * @param options format, log file and JSON fields; default: text on the console
 */
export async function setupLogging(level: LogLevel, options: LogSinkOptions = {}): Promise<void> {
  await configure({
    reset: true,
    sinks: { out: logSink(options) },
    loggers: [
      { category: ["celeriac"], lowestLevel: level, sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/**
 * Flush and close what {@link setupLogging} opened (a log file's buffer).
 *
 * @example
 * ```ts ignore
 * await setupLogging("info", { logfile: "worker.log" });
 * await closeLogging();
 * ```
 */
export async function closeLogging(): Promise<void> {
  await dispose();
}
