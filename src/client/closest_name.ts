/**
 * The known name closest to a mistyped one, for "did you mean" hints (a
 * command-line option or command, an app option).
 *
 * @module
 */

/**
 * Edit distance between two short strings: insertions, deletions,
 * substitutions, and two neighbouring letters swapped (`pign` is one edit
 * from `ping`, not two).
 */
function distance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known name closest to a mistyped one (a command, an `inspect` or
 * `control` method), if it is close enough to be what was meant (at most a
 * third of its letters differ).
 *
 * @example
 * ```ts
 * import { closestName } from "./closest_name.ts";
 * closestName("stat", ["stats", "ping"]); // "stats"
 * closestName("pign", ["stats", "ping"]); // "ping"
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
