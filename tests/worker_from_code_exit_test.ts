/**
 * The README's "From code" worker exits after SIGTERM (`await worker.finished`
 * then `await app.close()`), and a worker's stop leaves the app open for the
 * rest of the process: a second worker on it keeps consuming, results stay
 * readable.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";

const ROOT = new URL("../", import.meta.url);

/** Run the program until it started, send SIGTERM, and wait for its exit (killed after 60 s). */
async function stopAfterStart(
  env: Record<string, string>,
): Promise<Deno.CommandStatus & { hung: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("deno.json", ROOT).pathname,
      "tests/apps/from_code_program.ts",
    ],
    cwd: ROOT.pathname,
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("started\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.match(out, /started\n/);
  child.kill("SIGTERM");
  let hung = false;
  // A guard against hanging the suite, not a timing: the program has nothing left to do.
  const guard = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, 60_000);
  const drained = (async () => {
    while (!(await reader.read()).done);
  })();
  const status = await child.status;
  clearTimeout(guard);
  await drained;
  return { ...status, hung };
}

Deno.test("worker from code: the README's pattern exits after SIGTERM (Redis broker)", async () => {
  const prefix = uniquePrefix("from-code");
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  try {
    const status = await stopAfterStart({ FROM_CODE_BROKER: broker });
    assert.equal(status.hung, false, "still running 60 s after SIGTERM");
    assert.equal(status.code, 0);
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test("worker from code: a second worker on the same app keeps consuming after the first stops", async () => {
  const { Worker } = await import("../worker.ts");
  const queue = `from_code_${crypto.randomUUID().slice(0, 8)}`;
  const prefix = uniquePrefix("from-code-two");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const app = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const add = app.task("t.add", (a: number, b: number) => a + b);
  const options = { app, pool: "inline" as const, concurrency: 1, queues: [queue] };
  const first = new Worker({ ...options, hostname: `first@${queue}` });
  const second = new Worker({ ...options, hostname: `second@${queue}` });
  try {
    await first.start();
    await second.start();
    assert.equal(await (await add.delay(1, 2)).get({ timeout: 10_000 }), 3);
    await first.stop();
    assert.equal(await (await add.delay(3, 4)).get({ timeout: 10_000 }), 7);
  } finally {
    await first.stop();
    await second.stop();
    await app.purge(queue).catch(() => {});
    await app.close();
    await deleteKeys(prefix);
  }
});

Deno.test("worker from code: results stay readable after the worker stops (kv://:memory:)", async () => {
  const { Worker } = await import("../worker.ts");
  const app = new Celery({ broker: "kv://:memory:" });
  const add = app.task("t.add", (a: number, b: number) => a + b);
  const worker = new Worker({ app, pool: "inline", concurrency: 1 });
  try {
    await worker.start();
    const result = await add.delay(2, 3);
    while (!(await result.ready())) await new Promise((r) => setTimeout(r, 20));
    await worker.stop();
    assert.equal(await result.get({ timeout: 10_000 }), 5);
  } finally {
    await worker.stop();
    await app.close();
  }
});
