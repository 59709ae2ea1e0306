/**
 * LogTape loggers for modules that task Web Workers load with the user's app
 * (the client, beat). LogTape imports Node's `node:stream` and `node:util`,
 * about 4 MiB per isolate, and nothing configures it in a Web Worker, where
 * its records go nowhere: so a Web Worker imports it only when something
 * logs, while the main thread imports it when this module loads and logs as
 * a static import would.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";

type LogTape = typeof import("@logtape/logtape");

/** The levels a {@link LazyLogger} writes at. */
export type LazyLevel = "debug" | "info" | "warn" | "error";

/**
 * A logger that loads LogTape on first use (at once on the main thread).
 *
 * @example
 * ```ts
 * import { lazyLogger } from "./lazy_logger.ts";
 * const log = lazyLogger(["celeriac", "example"]);
 * log.warn("Ignored {what}", { what: "a malformed reply" });
 * ```
 */
export type LazyLogger = Record<
  LazyLevel,
  (message: string, properties?: Record<string, unknown>) => void
>;

let logtape: LogTape | undefined;
let loading: Promise<void> | undefined;

function load(): Promise<void> {
  return loading ??= import("@logtape/logtape").then(
    (m) => {
      logtape = m;
    },
    // A sandboxed Web Worker may not read the module any more: its records
    // go nowhere, as they would through an unconfigured LogTape.
    () => {},
  );
}

const inWebWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope ===
  "function";
if (!inWebWorker) load();

/**
 * The logger of a category: LogTape's `getLogger(category)` once LogTape is
 * loaded; records written before that are written, in order, when it is.
 *
 * @example
 * ```ts
 * import { lazyLogger } from "./lazy_logger.ts";
 * const log = lazyLogger(["celeriac", "signals"]);
 * log.error("{where} failed: {error}", { where: "task_prerun", error: "boom" });
 * ```
 *
 * @param category the LogTape category
 * @returns the logger
 */
export function lazyLogger(category: readonly string[]): LazyLogger {
  let logger: Logger | undefined;
  const write = (level: LazyLevel, message: string, properties?: Record<string, unknown>) => {
    if (logtape) {
      (logger ??= logtape.getLogger(category))[level](message, properties ?? {});
      return;
    }
    load().then(() => {
      if (logtape) (logger ??= logtape.getLogger(category))[level](message, properties ?? {});
    });
  };
  return {
    debug: (message, properties) => write("debug", message, properties),
    info: (message, properties) => write("info", message, properties),
    warn: (message, properties) => write("warn", message, properties),
    error: (message, properties) => write("error", message, properties),
  };
}
