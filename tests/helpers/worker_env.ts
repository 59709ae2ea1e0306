/**
 * The environment of a test's `deno run -A worker.ts ...` process. Run as a
 * program, `worker.ts` (its `worker` and `dashboard` commands) starts over
 * once with the worker's V8 flags (src/cli/v8_flags.ts): a second start of
 * Deno and of the whole module graph, ~0.12 s of CPU on a quiet machine,
 * more under a loaded CI, and CI starts a few hundred workers. So the helpers
 * start them, unless told otherwise, with what that start over would set
 * already in their environment ({@link workerEnv}): the worker finds the
 * flags in effect, runs with the same flags and environment, and does not
 * start over. A test of the start over itself asks for `v8Start: "restart"`.
 */

import { parseArgs } from "node:util";
import { OPTIONS } from "../../src/cli/options.ts";
import {
  DASHBOARD_V8_FLAGS,
  DEFAULT_V8_FLAGS,
  planFromEnvironment,
  startOverVars,
  takesV8Flags,
} from "../../src/cli/v8_flags.ts";

/**
 * How a test's worker process comes by the worker's V8 flags: `"preset"`,
 * the helpers' default, from its environment, set by the test as the
 * worker's start over would set it; `"restart"`, by starting over, as a
 * worker run by hand does (for tests of that start over, and of what only it
 * does).
 *
 * @example
 * ```ts ignore
 * const worker = await celeriacWorker(args, {}, { v8Start: "restart" });
 * ```
 */
export type V8Start = "preset" | "restart";

/**
 * The command of `worker.ts ARGS` when it would start over with V8 flags (a `worker` or
 * `dashboard` command), else null.
 */
function startsOver(args: string[]): string | null {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch {
    return null; // a usage error, refused before the flags are looked at
  }
  const { values, positionals } = parsed;
  if (values.help || values.version) return null;
  const command = positionals[0] ?? "worker";
  return takesV8Flags(command) ? command : null;
}

/**
 * The environment to start `deno ARGS` with (`ARGS` = `run`, Deno's flags,
 * `worker.ts`, the worker's arguments): `env`, plus, for `v8Start: "preset"`
 * and a command that would start over with the V8 flags (a `worker` or
 * `dashboard` command run with `-A`, on Linux), the variables that start
 * over would set, as planned from the test's environment and `env`
 * (`planV8Flags`, `startOverVars`). Any other command line keeps `env`.
 *
 * @example
 * ```ts ignore
 * const args = ["run", "-A", "worker.ts", "--app", "./tasks.ts"];
 * new Deno.Command(Deno.execPath(), { args, env: workerEnv(args, { MY_VAR: "1" }) });
 * ```
 *
 * @param args Deno's arguments, from `run` on
 * @param env variables the test sets over its own environment
 * @param v8Start see {@link V8Start}; default `"preset"`
 * @param base the environment `env` is laid over; default this process's
 * (a test of this helper passes its own rather than change the process's)
 * @returns the variables to start the process with
 */
export function workerEnv(
  args: string[],
  env: Record<string, string> = {},
  v8Start: V8Start = "preset",
  base: Record<string, string> = Deno.env.toObject(),
): Record<string, string> {
  const script = args.indexOf("worker.ts");
  if (v8Start === "restart" || Deno.build.os !== "linux" || args[0] !== "run" || script < 0) {
    return env;
  }
  const denoFlags = args.slice(1, script);
  if (!denoFlags.includes("-A") && !denoFlags.includes("--allow-all")) return env;
  const command = startsOver(args.slice(script + 1));
  if (command === null) return env;
  const environment = { ...base, ...env };
  const defaults = command === "dashboard" ? DASHBOARD_V8_FLAGS : DEFAULT_V8_FLAGS;
  const plan = planFromEnvironment([Deno.execPath(), ...args], environment, defaults);
  return plan.restart ? { ...env, ...startOverVars(plan) } : env;
}
