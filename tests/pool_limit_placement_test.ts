/**
 * A task that ran past its hard limit held its Web Worker that long: the
 * pool places the next task of its name as that heavy, so a task handed on
 * while it runs goes to another Web Worker rather than wait behind it (and
 * be stopped with it at its limit). Before, a killed task taught the pool
 * nothing: it still counted as 1 ms of work, and a task placed on a tie
 * went behind it.
 */

import assert from "node:assert/strict";
import type { RunOutcome } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { poolRunRequest } from "./helpers/run_info.ts";
import type { Limited } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

const MODULE = new URL("./apps/runs_app.ts", import.meta.url).href;

Deno.test("threads pool: after a hard limit, a task of that name gets no task placed behind it while another Web Worker is free", async () => {
  const dir = await Deno.makeTempDir({ prefix: "limit-placement-" });
  const gates = [`${dir}/first`, `${dir}/second`, `${dir}/await`];
  const outcomes: RunOutcome[] = [];
  const limited: Limited[] = [];
  const p = new ThreadPool({ size: 2, slots: 16, module: MODULE, exportName: "app", config: {} }, {
    onOutcomes: (o) => outcomes.push(...o),
    onPublish: () => Promise.resolve(),
    onLost: () => {},
    onTimeLimit: (seq, seconds, abandoned) => limited.push({ seq, seconds, abandoned }),
  });
  await p.start();
  try {
    const first = poolRunRequest("runs.block", [gates[0]], {
      timeLimits: { hard: 0.3, soft: null },
    });
    p.run([first]);
    await until("the first blocking task's hard limit", () => limited.length === 1);
    const second = poolRunRequest("runs.block", [gates[1]], {
      timeLimits: { hard: 600, soft: null },
    });
    p.run([second]);
    await until("the second blocking task to start", () => exists(`${gates[1]}.started`));
    const waiting = poolRunRequest("runs.await", [gates[2]]);
    p.run([waiting]);
    const later = poolRunRequest("runs.spin", [0, `${dir}/runs`]);
    p.run([later]);
    p.terminate([second.seq]);
    await until("the second blocking task's terminate", () => limited.length === 2);
    // Before: abandoned [later]: placed behind the blocking task (1 ms of work, as the awaiting
    // task on the other Web Worker), it would have waited there until that one's limit.
    assert.deepEqual(limited[1], { seq: second.seq, seconds: 0, abandoned: [] });
    await until("the later task's outcome", () => outcomes.some((o) => o.seq === later.seq));
    assert.equal(outcomes.find((o) => o.seq === later.seq)?.ok, true);
  } finally {
    // Ends the threads Deno may leave running.
    for (const g of gates) await Deno.writeTextFile(g, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
