/**
 * How the `threads` pool logs a Web Worker that died (an uncaught error,
 * an app module that failed to load, or task code ending it).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Log the death of a Web Worker: why, how many tasks were lost (naming up
 * to three), how many not started are put back, and what replaces it.
 *
 * @example
 * ```ts
 * logDeath("it called Deno.exit(3)", [7], [8], ["tasks.add[0f1e...]"], "replacing it in 0 ms");
 * ```
 *
 * @param reason why it died
 * @param lost the tasks lost with it
 * @param back the tasks put back
 * @param named `name[id]` of the first (at most three) started tasks
 * @param what what replaces it ("replacing it in N ms", or that it was replaced already)
 */
export function logDeath(
  reason: string,
  lost: number[],
  back: number[],
  named: string[],
  what: string,
): void {
  log.error(
    "A Web Worker died ({reason}); {n} task(s) lost{names}, {back} not started put back; {what}",
    {
      reason,
      n: lost.length,
      names: named.length ? ` (${named.join(", ")}${lost.length > 3 ? ", ..." : ""})` : "",
      back: back.length,
      what,
    },
  );
}
