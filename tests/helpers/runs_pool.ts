/** A threads pool of one Web Worker running tests/apps/runs_app.ts, and the runs it counts in a file. */

import type { RunOutcome, RunRequest } from "../../src/worker/executor.ts";
import { ThreadPool } from "../../src/worker/thread_pool.ts";

const MODULE = new URL("../apps/runs_app.ts", import.meta.url).href;

/** A hard time limit the pool reported: the task, its limit, and the tasks it put back. */
export interface Limited {
  seq: number;
  seconds: number;
  abandoned: number[];
}

/**
 * A started pool of one Web Worker, and what it reports.
 *
 * @example
 * ```ts
 * const { pool, outcomes } = await onePool();
 * await pool.close();
 * ```
 * @returns the pool, its outcomes, the limits it hit and the tasks it lost
 */
export async function onePool(): Promise<
  { pool: ThreadPool; outcomes: RunOutcome[]; limited: Limited[]; lost: number[] }
> {
  const outcomes: RunOutcome[] = [];
  const limited: Limited[] = [];
  const lost: number[] = [];
  const p = new ThreadPool({ size: 1, slots: 16, module: MODULE, exportName: "app", config: {} }, {
    onOutcomes: (o) => outcomes.push(...o),
    onPublish: () => Promise.resolve(),
    onLost: (seqs) => lost.push(...seqs),
    onTimeLimit: (seq, seconds, abandoned) => limited.push({ seq, seconds, abandoned }),
  });
  await p.start();
  return { pool: p, outcomes, limited, lost };
}

/**
 * Runs per task id, from the file the tasks append their ids to.
 *
 * @example
 * ```ts
 * assert.deepEqual(runsOf(file, reqs), [1, 1, 0]);
 * ```
 * @param file the file the runs are counted in
 * @param reqs the requests, in the order wanted
 * @returns how many times each ran
 */
export function runsOf(file: string, reqs: RunRequest[]): number[] {
  const ids = Deno.readTextFileSync(file).split("\n").filter(Boolean);
  return reqs.map((r) => ids.filter((id) => id === r.id).length);
}
