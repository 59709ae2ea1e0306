/**
 * Chaos: two worker processes share one Deno KV file; one is SIGKILLed
 * mid-drain. The other finishes everything, the killed one's tasks coming
 * back after the visibility timeout (2 s). Invariants: every task SUCCESS,
 * no task runs again after its SUCCESS was stored, the survivor is alive.
 */

import assert from "node:assert/strict";
import { Celery } from "../../mod.ts";
import { report } from "../helpers/report.ts";
import { countRuns } from "./app.ts";
import { alive, notDone, startWorker, statesVia, waitUntil } from "./helpers.ts";

Deno.test("chaos: two workers on one KV file, one SIGKILLed, lose nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-chaos-kv-" });
  const url = `kv://${dir}/queue.sqlite?visibility_timeout=2`;
  const runs = `${dir}/runs.txt`;
  const n = 1000;
  const client = new Celery({ broker: url, backend: url, defaultQueue: "kv" });
  const args = ["-b", url, "--backend", url, "-Q", "kv", "-c", "1", "--loglevel", "WARNING"];
  const workers: ReturnType<typeof startWorker>[] = [];
  try {
    const work = client.remoteTask("chaos.work");
    const ids: string[] = [];
    for (let i = 0; i < n; i += 250) {
      const batch = Array.from({ length: 250 }, (_, j) => work.delay(`v${i + j}`, 30));
      for (const r of await Promise.all(batch)) ids.push(r.id);
    }
    workers.push(startWorker("kv worker a", args, { CHAOS_RUNS: runs }));
    workers.push(startWorker("kv worker b", args, { CHAOS_RUNS: runs }));
    await waitUntil("a quarter has run", async () => (await countRuns(runs)).runs >= n / 4, 60_000);
    await workers[0].stop("SIGKILL");
    const backend = await client.resultBackend();
    await waitUntil(
      "every task has a state",
      async () => notDone(await statesVia(backend, ids)).length === 0,
      120_000,
      () => workers[1].output.slice(-3000),
    );
    assert.ok(await alive(workers[1]), "the other worker is alive");
    const states = await statesVia(backend, ids);
    assert.deepEqual(ids.filter((id) => states.get(id) !== "SUCCESS"), [], "lost tasks");
    const { runs: total, ids: ran } = await countRuns(runs);
    let afterSuccess = 0;
    for (const id of ids) {
      const meta = await backend.get(id);
      const done = Date.parse(meta?.date_done + "Z");
      assert.ok(Number.isFinite(done), `SUCCESS of ${id} has its date_done`);
      afterSuccess += (ran.get(id) ?? []).filter((t) => t > done + 50).length;
    }
    report(
      `kv kill: ${n} tasks on two workers, one SIGKILLed: 0 lost, ${total - n} re-executions, ` +
        `${afterSuccess} runs after SUCCESS was stored`,
    );
    assert.equal(afterSuccess, 0);
    assert.equal((await workers[1].stop("SIGTERM")).code, 0);
  } finally {
    for (const w of workers) await w.stop("SIGKILL");
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
