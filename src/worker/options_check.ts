/**
 * The checks a {@link WorkerOptions} passes when a `Worker` is constructed,
 * before anything connects: options that cannot work are refused at once
 * with a message saying what to change.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import type { WorkerOptions } from "./worker_options.ts";

/**
 * Refuse worker options that cannot work: the threads pool (the default)
 * without `appModule`, a `maxDecompressedSize` that is not a whole number
 * of bytes >= 1, a `heartbeatInterval` outside 0 to what a timer holds, a
 * `leakedThreadsGrace` that is not a number of seconds > 0.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * checkWorkerOptions({ app, pool: "inline", heartbeatInterval: 2 }); // passes
 * checkWorkerOptions({ app }); // TypeError: the threads pool needs appModule
 * ```
 *
 * @param options the worker's options
 * @throws {TypeError} for a threads pool without `appModule` or a bad `maxDecompressedSize`
 * @throws {RangeError} for a `heartbeatInterval` or `leakedThreadsGrace` out of range
 */
export function checkWorkerOptions(options: WorkerOptions): void {
  if ((options.pool ?? "threads") === "threads" && !options.appModule) {
    throw new TypeError(
      "The threads pool needs appModule: the URL of the module exporting the app",
    );
  }
  const maxDecompressed = options.maxDecompressedSize;
  if (
    maxDecompressed !== undefined && !(Number.isInteger(maxDecompressed) && maxDecompressed >= 1)
  ) {
    throw new TypeError(
      `maxDecompressedSize needs a whole number of bytes >= 1, got ${maxDecompressed}`,
    );
  }
  const beat = options.heartbeatInterval;
  if (beat !== undefined && !(beat >= 0 && beat * 1000 <= MAX_TIMER_MS)) {
    // A timer repeats a longer interval every 1 ms: a flood of worker-heartbeat events.
    throw new RangeError(
      `heartbeatInterval needs 0 to ${MAX_TIMER_MS / 1000} seconds (24.8 days, what a timer ` +
        `holds), got ${beat}`,
    );
  }
  const grace = options.leakedThreadsGrace;
  if (grace !== undefined && !(grace > 0 && Number.isFinite(grace * 1000))) {
    throw new RangeError(
      `leakedThreadsGrace (--leaked-threads-grace) needs a number of seconds > 0, got ${grace}`,
    );
  }
}
