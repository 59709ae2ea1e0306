/**
 * Log capture for tests: LogTape records of one category, kept in memory.
 *
 * @module
 */
import { configure, type LogLevel, type LogRecord } from "@logtape/logtape";

/**
 * Route the records of `category` at `level` and above, and LogTape's own
 * warnings, to an array the test reads; LogTape's `reset()` ends it (call it
 * in the test's `finally`).
 *
 * @example
 * ```ts ignore
 * const records = await captureLogs("info");
 * try {
 *   // ... run what logs ...
 *   assert.ok(records.map(logLine).some((l) => l.startsWith("warning ")));
 * } finally {
 *   await reset();
 * }
 * ```
 *
 * @param level the lowest level kept (default `"info"`)
 * @param category the category kept, with its children (default `["celeriac"]`)
 * @returns the array the records are pushed to, in order
 */
export async function captureLogs(
  level: LogLevel = "info",
  category: readonly string[] = ["celeriac"],
): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: [...category], lowestLevel: level, sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["mem"] },
    ],
  });
  return records;
}

/**
 * A record as `"<level> <message>"`, its values written with `String()`.
 *
 * @example
 * ```ts ignore
 * records.map(logLine); // ["warning Redis master m1 is now ..."]
 * ```
 *
 * @param record a captured record
 * @returns the line
 */
export function logLine(record: LogRecord): string {
  return `${record.level} ${
    record.message.map((p) => typeof p === "string" ? p : String(p)).join("")
  }`;
}
