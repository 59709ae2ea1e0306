/**
 * Workflows (Celery's canvas) on the embedded Deno KV store: chain, group,
 * chord, map / starmap / chunks, a failing chord, errbacks and a saved group,
 * with a worker in the same process.
 *
 *   deno run --allow-read=. --allow-env examples/workflows.ts
 *
 * The same code runs against Redis or RabbitMQ, with Celeriac or Python
 * Celery workers: set CELERY_BROKER_URL / CELERY_RESULT_BACKEND and allow
 * the connections,
 *
 *   CELERY_BROKER_URL=redis://127.0.0.1:6379/0 CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/0 \
 *     deno run --allow-read=. --allow-env --allow-net=127.0.0.1:6379 examples/workflows.ts
 *
 * With rpc:// results (CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672//
 * CELERY_RESULT_BACKEND=rpc://, --allow-net=127.0.0.1:5672) the chords, the
 * errbacks and the saved group are skipped, as it says: rpc:// joins no
 * chords, saves no groups and sends an errback's result to no caller, as in
 * Celery; results on Redis run them all.
 */
// deno-lint-ignore-file no-console

import { chain, chord, group, TaskError } from "../mod.ts";
import { Worker } from "../worker.ts";
import { add, alert, app, fail, mul, noteFailure, show, tsum } from "./workflow_tasks.ts";

// The broker from CELERY_BROKER_URL, else an in-memory KV store.
if (!Deno.env.get("CELERY_BROKER_URL")) app.configure({ broker: "kv://:memory:" });
// Every step below reads results: a broker without a result backend (Redis or RabbitMQ
// with CELERY_RESULT_BACKEND unset) has none to read them from.
if (app.config.backend === null) {
  console.error(
    "examples/workflows.ts reads results: set CELERY_RESULT_BACKEND too " +
      "(e.g. the broker's redis://… URL, or rpc:// on RabbitMQ)",
  );
  Deno.exit(2);
}
const worker = new Worker({
  app,
  appModule: new URL("./workflow_tasks.ts", import.meta.url).href,
  concurrency: 2,
});
await worker.start();
const T = { timeout: 10_000 };

// chain: each step gets the previous result first; .si() ignores it.
const total = await chain(add.s(1, 2), add.s(3), mul.s(4), show.s("apples")).applyAsync();
console.log(`chain(add(1, 2), add(3), mul(4), show)  = ${await total.get(T)}`); // string

// group: in parallel; the result is the tuple of the members' results.
const pair = await group([add.s(2, 2), show.s(5, "pears")]).applyAsync();
const [four, pears] = await pair.get(T); // [number, string]
console.log(`group(add(2, 2), show(5))               = [${four}, ${pears}]`);

// map / starmap run every item in one task; chunks splits into several.
console.log(
  `tsum.map([[1, 2], [3, 4]])              = ${await (await tsum.map([[1, 2], [3, 4]]).applyAsync())
    .get(T)}`,
);
console.log(
  `add.starmap([[1, 2], [3, 4]])           = ${await (await add.starmap([[1, 2], [3, 4]])
    .applyAsync()).get(T)}`,
);
const parts = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
console.log(`add.chunks([...3], 2)                   = ${JSON.stringify(await parts.get(T))}`);

// Chords and saved groups need a result backend that stores results for
// every process: rpc:// sends each one only to its caller.
if (/^rpc:/i.test(app.config.backend ?? "")) {
  console.log(
    "chords and saved groups                 → skipped: the rpc:// result backend has neither " +
      "(as in Celery); run with CELERY_RESULT_BACKEND=redis://…",
  );
} else {
  // chord: the body runs once, with the header's results in header order.
  const sum = await chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], tsum.s()).applyAsync();
  console.log(`chord([add × 3], tsum)                  = ${await sum.get(T)}`);

  // a group followed by a step becomes a chord, as in Celery.
  const upgraded = await chain(add.s(1, 1), group([add.s(10), add.s(20)]), tsum.s()).applyAsync();
  console.log(`chain(add, group(add, add), tsum)       = ${await upgraded.get(T)}`);

  // A failing header member: the body does not run and fails with ChordError.
  try {
    await (await chord([add.s(1, 1), fail.s("boom")], tsum.s()).applyAsync()).get(T);
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    console.log(`chord with a failing member             → ${err.excModule}.${err.excType}`);
  }

  // Errbacks: a one-argument errback is sent as a task with the failed task's id; an
  // old-style one (request, exc, traceback) is called in-process by the worker that ran it.
  // (With rpc:// the errback's result would go to no caller: the worker sends it, not us.)
  const noted = crypto.randomUUID();
  const failed = await fail.s("no apples").onError(noteFailure.s().set({ taskId: noted }))
    .onError(alert.s("#ops")).applyAsync();
  await failed.get(T).catch((err) =>
    console.log(`fail("no apples")                       → ${err}`)
  );
  console.log(`its one-argument errback                = ${await app.asyncResult(noted).get(T)}`);

  // Groups can be saved and restored by id (here, or by Python's GroupResult.restore).
  const saved = await group([mul.s(2, 3), mul.s(4, 5)]).applyAsync();
  await saved.save();
  const restored = await app.restoreGroup<number[]>(saved.id);
  console.log(
    `restored group                          = ${JSON.stringify(await restored?.get(T))}`,
  );
  for await (const member of saved.results()) console.log(`  finished: ${member.id}`);
}

await worker.stop();
await app.close();
console.log(`worker stats: ${JSON.stringify(worker.stats)}`);
