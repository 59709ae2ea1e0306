/**
 * One-line messages for command-line mistakes, with the hint to run
 * `--help` (and the closest known option when a name is mistyped), instead
 * of `node:util` `parseArgs`' long messages.
 *
 * @module
 */

import { closestName } from "../client/closest_name.ts";

export { closestName };

/**
 * The known long option closest to a mistyped one, if it is close enough
 * to be what was meant (at most a third of its letters differ).
 *
 * @example
 * ```ts
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

const SUPERVISOR = "Celeriac does not daemonize: run it under a supervisor (systemd, Docker, " +
  "supervisord), which keeps the process id and restarts it";

/** Celery worker flags Celeriac has no counterpart for, and what to do instead. */
const CELERY_FLAGS: Readonly<Record<string, string>> = {
  "-O":
    "Celery's -O fair is --prefetch-multiplier 1 here (each Web Worker holds one task at a time)",
  "--pidfile": SUPERVISOR,
  "--detach": SUPERVISOR,
  "--uid": SUPERVISOR,
  "--gid": SUPERVISOR,
  "--umask": SUPERVISOR,
};

/**
 * Turn a `parseArgs` error into one line that says what is wrong and how to
 * get help.
 *
 * @example
 * ```ts
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
    const celery = CELERY_FLAGS[unknown[1].split("=")[0]];
    if (celery) return `error: unknown option ${unknown[1]}: ${celery}`;
    const guess = closestOption(unknown[1], known);
    return `error: unknown option ${unknown[1]}${
      guess ? ` (did you mean ${guess}?)` : ""
    }; ${hint}`;
  }
  const missing = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(err.message);
  if (missing) return `error: option ${missing[1]} needs a value; ${hint}`;
  const noValue = /^Option '([^']+)' does not take an argument/.exec(err.message);
  if (noValue) return `error: option ${noValue[1]} takes no value; ${hint}`;
  const ambiguous = /^Option '([^']+)' argument is ambiguous\.[^]*use (.+?)\.?$/.exec(err.message);
  if (ambiguous) {
    return `error: option ${ambiguous[1]} takes a value, and what follows it starts with a ` +
      `dash: to give such a value write ${ambiguous[2]}; ${hint}`;
  }
  return `error: ${err.message.split("\n")[0]}; ${hint}`;
}

/** A negative number, as the value of a flag: `-5`, `-0.5`, `-.5`, `-1e3`. */
const NEGATIVE = /^-(?:\d|\.\d)/;

/**
 * The command line with a negative number after a flag that takes a value
 * joined to it (`--countdown -5` becomes `--countdown=-5`), as click reads
 * Celery's flags: `parseArgs` refuses such a value, taking it for a flag.
 * Everything after `--` is left as it is.
 *
 * @example
 * ```ts
 * import { joinNegativeValues } from "./arg_errors.ts";
 * const options = { countdown: { type: "string" }, timeout: { type: "string", short: "t" } } as const;
 * joinNegativeValues(["call", "t.add", "--countdown", "-5", "-t", "-1"], options);
 * // ["call", "t.add", "--countdown=-5", "--timeout=-1"]
 * ```
 *
 * @param args the command-line arguments
 * @param options the `parseArgs` options
 * @returns the arguments to parse
 */
export function joinNegativeValues(
  args: readonly string[],
  options: Readonly<Record<string, { readonly type: string; readonly short?: string }>>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return [...out, ...args.slice(i)];
    const name = takesValue(arg, options);
    if (name !== undefined && i + 1 < args.length && NEGATIVE.test(args[i + 1])) {
      out.push(`--${name}=${args[++i]}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The long name of the flag `arg` is (`--countdown`, `-t`) when it takes a value. */
function takesValue(
  arg: string,
  options: Readonly<Record<string, { readonly type: string; readonly short?: string }>>,
): string | undefined {
  if (arg.startsWith("--")) {
    const name = arg.slice(2);
    return options[name]?.type === "string" ? name : undefined;
  }
  if (arg.length !== 2 || arg[0] !== "-") return undefined;
  for (const [name, o] of Object.entries(options)) {
    if (o.short === arg[1]) return o.type === "string" ? name : undefined;
  }
  return undefined;
}
