/**
 * What travels beside a pool Web Worker's shared rings keeps its place:
 * an abort posted right after a run request written to the ring reaches
 * the task, and a task's own posts to the main thread do not shift the
 * count that orders ring records against posts.
 */

import assert from "node:assert/strict";
import type { RunOutcome } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { poolRunRequest } from "./helpers/run_info.ts";

const MODULE = new URL("./apps/ring_order_app.ts", import.meta.url).href;

async function pool(): Promise<
  { pool: ThreadPool; outcome(seq: number): Promise<RunOutcome>; order: string[] }
> {
  const out: RunOutcome[] = [];
  /** What the main thread handled, in order: `state <seq>` and `outcome <seq>`. */
  const order: string[] = [];
  let wake: (() => void) | null = null;
  const p = new ThreadPool(
    { size: 1, slots: 8, module: MODULE, exportName: "app", config: {} },
    {
      onOutcomes: (o) => {
        out.push(...o);
        order.push(...o.map((x) => `outcome ${x.seq}`));
        wake?.();
      },
      onPublish: () => Promise.resolve(),
      onLost: (seqs, reason) => assert.fail(`lost ${seqs}: ${reason}`),
      onTimeLimit: () => assert.fail("no time limit is set"),
      onState: (seq) => {
        order.push(`state ${seq}`);
        return Promise.resolve();
      },
    },
  );
  await p.start();
  return {
    pool: p,
    order,
    outcome: async (seq) => {
      for (;;) {
        const o = out.find((o) => o.seq === seq);
        if (o) return o;
        await new Promise<void>((r) => wake = r);
      }
    },
  };
}

Deno.test("pool ring: an abort posted right after a run written to the ring, its thread busy, ends the task", async () => {
  const { pool: p, outcome } = await pool();
  try {
    for (let i = 0; i < 3; i++) {
      const busy = poolRunRequest("ro.spin", [200]);
      p.run([busy]);
      // Let the thread take the spin: the next request and the abort then wait behind it together.
      await new Promise((r) => setTimeout(r, 50));
      const waiting = poolRunRequest("ro.wait", [10_000]);
      p.run([waiting]);
      p.abort([waiting.seq]);
      const o = await outcome(waiting.seq);
      assert.equal(o.ok, false, `round ${i}: the abort was lost and the task ran`);
      assert.equal((await outcome(busy.seq)).ok, true);
    }
  } finally {
    await p.close();
  }
});

Deno.test("pool ring: a task's own posts do not let its outcome overtake the state it posted before", async () => {
  const { pool: p, outcome, order } = await pool();
  try {
    for (let i = 0; i < 20; i++) {
      const r = poolRunRequest("ro.stray_state", [50]);
      p.run([r]);
      assert.equal((await outcome(r.seq)).ok, true);
      const mine = order.filter((e) => e.endsWith(` ${r.seq}`));
      assert.deepEqual(mine, [`state ${r.seq}`, `outcome ${r.seq}`], `round ${i}`);
    }
  } finally {
    await p.close();
  }
});
