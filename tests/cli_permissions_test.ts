/**
 * The worker under narrow Deno permissions (`deno run --allow-read=.
 * worker.ts`, no `--allow-env`, no `--allow-sys`): it starts and runs.
 */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";

/** A worker on `kv://:memory:` run with these Deno flags, stopped once ready; its output. */
async function narrowWorker(denoFlags: string[], args: string[] = []): Promise<string> {
  const worker = Proc.start("worker", Deno.execPath(), [
    "run",
    ...denoFlags,
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    "kv://:memory:",
    ...args,
  ]);
  try {
    await worker.waitFor(/ ready: /, 30_000);
  } finally {
    await worker.stop("SIGINT");
  }
  return worker.output;
}

Deno.test("cli permissions: a worker without --allow-env and --allow-sys starts", async () => {
  const out = await narrowWorker(["--allow-read=."]);
  assert.match(out, /celeriac@localhost ready: /);
  assert.doesNotMatch(out, /^error: /m);
});
