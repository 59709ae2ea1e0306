/**
 * Tasks of the chaos suite. `chaos.work` records each execution by
 * appending its id and its start time to the file named by CHAOS_RUNS (one line
 * per run), so a test counts duplicate executions from outside the worker.
 */

import { Celery } from "../../mod.ts";

export const app = new Celery();

const runsFile = Deno.env.get("CHAOS_RUNS");

export const work = app.task(
  "chaos.work",
  { acksLate: true },
  async (id: string, ms: number = 0) => {
    if (runsFile) Deno.writeTextFileSync(runsFile, `${id} ${Date.now()}\n`, { append: true });
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return id;
  },
);

export const echo = app.task("chaos.echo", (value: unknown) => value);

/** Executions recorded in CHAOS_RUNS: how many runs, and the start times of each id's runs. */
export async function countRuns(
  file: string,
): Promise<{ runs: number; ids: Map<string, number[]> }> {
  const text = await Deno.readTextFile(file).catch(() => "");
  const ids = new Map<string, number[]>();
  let runs = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [id, at] = line.split(" ");
    runs++;
    ids.set(id, [...(ids.get(id) ?? []), Number(at)]);
  }
  return { runs, ids };
}
