/**
 * The known name closest to a mistyped one, for "did you mean" hints (a
 * command-line option or command, an app option).
 *
 * @module
 */

/** Edit distance between two short strings (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * The known name closest to a mistyped one (a command, an `inspect` or
 * `control` method), if it is close enough to be what was meant (at most a
 * third of its letters differ).
 *
 * @example
 * ```ts ignore
 * import { closestName } from "./closest_name.ts";
 * closestName("stat", ["stats", "ping"]); // "stats"
 * closestName("frobnicate", ["stats", "ping"]); // undefined
 * ```
 *
 * @param given the name as typed
 * @param known the names
 * @returns the closest name, or `undefined`
 */
export function closestName(given: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = distance(given, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3))
    ? best
    : undefined;
}
