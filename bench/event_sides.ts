/**
 * Shared pieces of the event benchmarks that compare this checkout with
 * another (`--base DIR`): their flags, each checkout's modules imported from
 * its own `src/`, and the worker's task event shapes (as
 * src/worker/task_events.ts builds them) made with that checkout's
 * `EventShape`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ROOT_DIR } from "./common.ts";

/** `--tasks N` (default 20000), `--rounds N` (default 12), `--base DIR` (none). */
export interface RoundArgs {
  tasks: number;
  rounds: number;
  base: string | undefined;
}

/**
 * Read `--tasks`, `--rounds` and `--base` from the command line.
 *
 * @example
 * ```ts
 * import { roundArgs } from "./event_sides.ts";
 * const { tasks, rounds, base } = roundArgs(["--rounds", "4"]); // 20000, 4, undefined
 * ```
 *
 * @param args the command line's arguments (default `Deno.args`)
 * @returns the figures
 * @throws {TypeError} when `--tasks` or `--rounds` is not a whole number >= 1
 */
export function roundArgs(args: string[] = Deno.args): RoundArgs {
  const { values } = parseArgs({
    args,
    options: {
      tasks: { type: "string", default: "20000" },
      rounds: { type: "string", default: "12" },
      base: { type: "string" },
    },
  });
  const tasks = Number(values.tasks);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(tasks) || tasks < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new TypeError("--tasks and --rounds take whole numbers >= 1");
  }
  return { tasks, rounds, base: values.base };
}

/**
 * Import `paths` (relative to a checkout's root) from this checkout, and from
 * `base` when given, each side's exports merged into one namespace.
 *
 * @example
 * ```ts
 * import { importSides } from "./event_sides.ts";
 * const sides = await importSides(["src/protocol/event_writer.ts"], undefined);
 * sides[0].name; // "this"
 * ```
 *
 * @param paths the modules to import, from the checkout's root
 * @param base another checkout's directory, or undefined
 * @returns `this` and, with `base`, `base`
 */
export async function importSides(
  paths: readonly string[],
  base: string | undefined,
  // deno-lint-ignore no-explicit-any
): Promise<{ name: string; m: Record<string, any> }[]> {
  const load = async (name: string, root: string) => {
    const url = (path: string) => new URL(path, `file://${root.replace(/\/?$/, "/")}`).href;
    const parts = await Promise.all(paths.map((p) => import(url(p))));
    return { name, m: Object.assign({}, ...parts) };
  };
  const sides = [await load("this", ROOT_DIR)];
  if (base) sides.push(await load("base", base));
  return sides;
}

/** The `task-received`, `task-started` and `task-succeeded` shapes of one checkout. */
export interface TaskShapes {
  // deno-lint-ignore no-explicit-any
  received: any;
  // deno-lint-ignore no-explicit-any
  started: any;
  // deno-lint-ignore no-explicit-any
  succeeded: any;
}

/**
 * Build the shapes a worker writes its task events with, from `EventShape`
 * as one checkout exports it (from `src/protocol/event_writer.ts`).
 *
 * @example
 * ```ts
 * import { EventShape } from "../src/protocol/event_writer.ts";
 * import { taskShapes } from "./event_sides.ts";
 * const { received } = taskShapes({ EventShape });
 * ```
 *
 * @param m the checkout's module namespace holding `EventShape`
 * @returns the three shapes
 */
// deno-lint-ignore no-explicit-any
export function taskShapes(m: Record<string, any>): TaskShapes {
  return {
    received: new m.EventShape("task-received", [
      "uuid",
      "name",
      "args",
      "kwargs",
      "root_id",
      "parent_id",
      "retries",
      "eta",
      "expires",
    ], ["name", "args", "kwargs", "parent_id", "retries", "eta", "expires"]),
    started: new m.EventShape("task-started", ["uuid"]),
    succeeded: new m.EventShape("task-succeeded", ["uuid", "result", "runtime"]),
  };
}
