/**
 * Worker options about reliability on the command line:
 * `--max-deliveries N` (poison messages), `--max-decompressed-size SIZE`
 * (decompression bombs), `--leaked-threads-restart N` and
 * `--leaked-threads-grace SECONDS` (threads of terminated Web Workers that
 * still run).
 *
 * @module
 */

import { byteSize, positiveNumber, wholeNumber } from "./flag_numbers.ts";

/** The options, for `parseArgs`. */
export const RELIABILITY_OPTIONS = {
  "max-deliveries": { type: "string" },
  "max-decompressed-size": { type: "string" },
  "leaked-threads-restart": { type: "string" },
  "leaked-threads-grace": { type: "string" },
} as const;

/** Their lines in the usage text. */
export const RELIABILITY_USAGE = `
      --max-deliveries N     park a message as poison (FAILURE stored) once consumers died
                             holding it N times (x-delivery-count; default 5, 0 = never);
                             a Web Worker that died running a task requeued by
                             --reject-on-worker-lost counts as one. RabbitMQ counts only
                             on quorum queues: on classic queues it does nothing (as
                             in Celery)
      --max-decompressed-size SIZE
                             park a message whose compressed body would decompress to more
                             than SIZE bytes (K, M, G suffixes; default 64M), decoding no
                             further: a small message that inflates to gigabytes is refused
      --leaked-threads-restart N
                             restart (warm shutdown, then the same command) once N threads
                             of terminated Web Workers keep a core busy 5 s on: Deno does not
                             stop a task in a synchronous loop at its hard time limit
                             (default 1, 0 = only report them; seeing them takes -A on Linux)
      --leaked-threads-grace SECONDS
                             how long such a thread must keep running to count as leaked
                             (default 5): synchronous code that returns sooner is not one`;

/**
 * `--leaked-threads-restart`'s default: the command line starts its process
 * over (`start_over.ts`), which ends the threads; a `Worker` of a program
 * only reports them by default (`DEFAULT_LEAKED_THREADS_RESTART`).
 */
const CLI_LEAKED_THREADS_RESTART = 1;

/**
 * Read the reliability options.
 *
 * @example
 * ```ts
 * import { reliabilityOptions } from "./reliability.ts";
 * reliabilityOptions({ "max-deliveries": "3" }); // { maxDeliveries: 3, leakedThreadsRestart: 1 }
 * reliabilityOptions({ "max-decompressed-size": "16M" }).maxDecompressedSize; // 16777216
 * reliabilityOptions({ "leaked-threads-restart": "0" }); // { leakedThreadsRestart: 0 }
 * reliabilityOptions({ "leaked-threads-grace": "30" }).leakedThreadsGrace; // 30
 * ```
 *
 * @param values parsed flags
 * @returns the worker options they set, `leakedThreadsRestart` always (its
 *   default differs from the `Worker`'s)
 * @throws {UsageError} for a value that is not a whole number >= 0 (a size >= 1 byte, a
 *   grace > 0 seconds)
 */
export function reliabilityOptions(
  values: Record<string, unknown>,
): {
  maxDeliveries?: number;
  maxDecompressedSize?: number;
  leakedThreadsRestart: number;
  leakedThreadsGrace?: number;
} {
  const maxDeliveries = wholeNumber(
    values["max-deliveries"] as string | undefined,
    "--max-deliveries",
  );
  const maxDecompressedSize = byteSize(
    values["max-decompressed-size"] as string | undefined,
    "--max-decompressed-size",
  );
  const leakedThreadsGrace = positiveNumber(
    values["leaked-threads-grace"] as string | undefined,
    "--leaked-threads-grace",
  );
  return {
    ...(maxDeliveries !== undefined ? { maxDeliveries } : {}),
    ...(leakedThreadsGrace !== undefined ? { leakedThreadsGrace } : {}),
    ...(maxDecompressedSize !== undefined ? { maxDecompressedSize } : {}),
    leakedThreadsRestart: wholeNumber(
      values["leaked-threads-restart"] as string | undefined,
      "--leaked-threads-restart",
    ) ??
      CLI_LEAKED_THREADS_RESTART,
  };
}
