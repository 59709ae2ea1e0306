/**
 * Tasks of the chaos suite. `chaos.work` records each execution by
 * appending its id to the file named by CHAOS_RUNS (one line per run), so
 * a test counts duplicate executions from outside the worker.
 */

import { Celery } from "../../mod.ts";

export const app = new Celery();

const runsFile = Deno.env.get("CHAOS_RUNS");

export const work = app.task(
  "chaos.work",
  { acksLate: true },
  async (id: string, ms: number = 0) => {
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    if (runsFile) Deno.writeTextFileSync(runsFile, id + "\n", { append: true });
    return id;
  },
);

export const echo = app.task("chaos.echo", (value: unknown) => value);

/** Executions recorded in CHAOS_RUNS: how many runs, how many distinct ids. */
export async function countRuns(file: string): Promise<{ runs: number; ids: Set<string> }> {
  const text = await Deno.readTextFile(file).catch(() => "");
  const lines = text.split("\n").filter((l) => l !== "");
  return { runs: lines.length, ids: new Set(lines) };
}
