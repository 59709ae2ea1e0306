/**
 * A client process and a worker process on one Deno KV file: bursts of
 * concurrent `delay()` calls while the worker drains the same file. Every
 * publish settles and every task ends in SUCCESS. Before publishes were
 * grouped into shared commits, each burst queued one SQLite commit per call
 * behind the worker's, and an open-loop producer (bench/soak.ts) fell
 * further behind with every burst until its calls seemed never to settle.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker } from "./helpers/procs.ts";

const BURSTS = 6;
const BURST = 1000;
const HANG_GUARD_MS = 60_000;

function guard<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle in ${HANG_GUARD_MS} ms`)),
      HANG_GUARD_MS,
    );
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

Deno.test("kv: bursts of delay() while another process drains the file all settle and succeed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-contention-" });
  const url = `kv://${dir}/queue.sqlite`;
  const queue = `contention-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker([
    "--app",
    "tests/apps/worker_app.ts",
    "-b",
    url,
    "--backend",
    url,
    "-Q",
    queue,
    "-c",
    "2",
  ]);
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    const add = client.remoteTask<[number, number], number>("t.add");
    const results = [];
    for (let b = 0; b < BURSTS; b++) {
      const burst = Array.from({ length: BURST }, (_, i) => add.delay(b, i));
      const settled = await guard(
        Promise.allSettled(burst),
        `burst ${b} of ${BURST} delay() calls`,
      );
      const failed = settled.filter((s) => s.status === "rejected");
      assert.deepEqual(failed, [], `burst ${b}: publishes rejected`);
      for (const s of settled) if (s.status === "fulfilled") results.push(s.value);
    }
    assert.equal(results.length, BURSTS * BURST);
    const values = await guard(
      Promise.all(results.map((r) => r.get({ timeout: HANG_GUARD_MS }))),
      "the results",
    );
    assert.equal(values.length, BURSTS * BURST);
    assert.equal(values.reduce((a, v) => a + v, 0), sumOfAll());
    assert.equal(await client.queueDepth(queue), 0);
  } finally {
    assert.equal((await worker.stop("SIGTERM")).code, 0, worker.output.slice(-2000));
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The sum of add(b, i) over every burst b and index i. */
function sumOfAll(): number {
  let sum = 0;
  for (let b = 0; b < BURSTS; b++) for (let i = 0; i < BURST; i++) sum += b + i;
  return sum;
}
