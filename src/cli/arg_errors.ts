/**
 * One-line messages for command-line mistakes, with the hint to run
 * `--help` (and the closest known option when a name is mistyped), instead
 * of `node:util` `parseArgs`' long messages.
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
 * The known long option closest to a mistyped one, if it is close enough
 * to be what was meant (at most a third of its letters differ).
 *
 * @example
 * ```ts ignore
 * import { closestOption } from "./arg_errors.ts";
 * closestOption("--concurency", ["concurrency", "queues"]); // "--concurrency"
 * closestOption("--color", ["concurrency", "queues"]); // undefined
 * ```
 *
 * @param given the option as typed, with its dashes
 * @param known the long option names, without dashes
 * @returns `--name`, or `undefined`
 */
export function closestOption(given: string, known: readonly string[]): string | undefined {
  const best = closestName(given.replace(/^-+/, "").split("=")[0], known);
  return best === undefined ? undefined : `--${best}`;
}

/**
 * The known name closest to a mistyped one (a command, an `inspect` or
 * `control` method), if it is close enough to be what was meant (at most a
 * third of its letters differ).
 *
 * @example
 * ```ts ignore
 * import { closestName } from "./arg_errors.ts";
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

/**
 * Turn a `parseArgs` error into one line that says what is wrong and how to
 * get help.
 *
 * @example
 * ```ts ignore
 * import { argumentError } from "./arg_errors.ts";
 * import { parseArgs } from "node:util";
 * try {
 *   parseArgs({ args: ["--concurency", "2"], options: { concurrency: { type: "string" } } });
 * } catch (err) {
 *   argumentError(err as Error, ["concurrency"]);
 *   // 'error: unknown option --concurency (did you mean --concurrency?); run with --help to see the options'
 * }
 * ```
 *
 * @param err what `parseArgs` threw
 * @param known the long option names, for suggestions
 * @returns the message
 */
export function argumentError(err: Error, known: readonly string[]): string {
  const hint = "run with --help to see the options";
  const code = (err as Error & { code?: string }).code;
  const unknown = /^Unknown option '([^']+)'/.exec(err.message);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    const guess = closestOption(unknown[1], known);
    return `error: unknown option ${unknown[1]}${
      guess ? ` (did you mean ${guess}?)` : ""
    }; ${hint}`;
  }
  const missing = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(err.message);
  if (missing) return `error: option ${missing[1]} needs a value; ${hint}`;
  const noValue = /^Option '([^']+)' does not take an argument/.exec(err.message);
  if (noValue) return `error: option ${noValue[1]} takes no value; ${hint}`;
  return `error: ${err.message.split("\n")[0]}; ${hint}`;
}
