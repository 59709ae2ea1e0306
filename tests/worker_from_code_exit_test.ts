/**
 * The README's "From code" worker exits after SIGTERM: the worker's stop
 * closes the app's connections its start opened (before, `worker.finished`
 * resolved but the open Redis connection kept the process running).
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

Deno.test("worker from code: an app connected before start stays open after stop", async () => {
  const { Worker } = await import("../worker.ts");
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  app.task("t.add", (a: number, b: number) => a + b);
  try {
    await app.broker();
    const worker = new Worker({ app, pool: "inline", concurrency: 1 });
    await worker.start();
    await worker.stop();
    assert.equal(app.connected, true);
  } finally {
    await app.close();
  }
  const own = new Celery({ broker: "kv://:memory:", backend: null });
  own.task("t.add", (a: number, b: number) => a + b);
  const worker = new Worker({ app: own, pool: "inline", concurrency: 1 });
  await worker.start();
  assert.equal(own.connected, true);
  await worker.stop();
  assert.equal(own.connected, false);
});
