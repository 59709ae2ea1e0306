/**
 * A broker that is down when the worker starts: the worker retries with a
 * growing delay and a log line per attempt, as Celery does
 * (`broker_connection_retry_on_startup`), and runs tasks once the server is
 * up; `--fail-fast` exits at once instead; a signal while waiting stops it,
 * also while a connect hangs (a server that accepts and never answers).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { startupRetryDelay } from "../src/cli/connect_retry.ts";
import { reservePorts } from "./helpers/ports.ts";
import { Proc, redisServerProc } from "./helpers/procs.ts";
import { SilentServer } from "./helpers/silent_server.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

function workerCli(port: number, extra: string[] = []): Proc {
  const url = `redis://127.0.0.1:${port}/0`;
  return Proc.start("worker", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "--app",
    "./tests/apps/first_contact_app.ts",
    "--broker",
    url,
    "--backend",
    url,
    "-c",
    "1",
    ...extra,
  ], { env: { NO_COLOR: "1", CELERY_DEFAULT_QUEUE: `startup-${port}` } });
}

Deno.test("startup retry: delays grow 2, 4, 6 … seconds up to 30, as kombu's", () => {
  assert.deepEqual([1, 2, 3, 14, 15, 16, 99].map(startupRetryDelay), [2, 4, 6, 28, 30, 30, 30]);
});

Deno.test({
  name: "startup retry: a worker started before its broker retries, then runs tasks",
  ignore: WITHOUT_REDIS,
}, async () => {
  using ports = reservePorts();
  const port = ports.base;
  const worker = workerCli(port);
  let server: Proc | null = null;
  try {
    await worker.waitFor(
      /Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: connection refused.*Trying again in 2 s \(1\/100; --fail-fast exits instead\)/,
      30_000,
    );
    server = redisServerProc(port);
    await server.waitFor(/Ready to accept connections/);
    await worker.waitFor(/ ready: /, 30_000);
    const url = `redis://127.0.0.1:${port}/0`;
    const client = new Celery({ broker: url, backend: url, defaultQueue: `startup-${port}` });
    try {
      const r = await client.sendTask<string>("fc.big", [3]);
      assert.equal(await r.get({ timeout: 20_000 }), "yyy");
    } finally {
      await client.close();
    }
  } finally {
    const status = await worker.stop();
    assert.equal(status.code, 0, worker.output);
    await server?.stop();
  }
});

Deno.test("startup retry: --fail-fast exits at once; a signal while waiting stops the worker", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const fast = workerCli(port, ["--fail-fast"]);
  const status = await fast.child.status;
  await fast.stop();
  assert.equal(status.code, 1);
  assert.match(
    fast.output,
    /error: Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: connection refused/,
  );
  assert.doesNotMatch(fast.output, /Trying again/);

  const waiting = workerCli(port);
  await waiting.waitFor(/Trying again in 2 s/, 30_000);
  const stopped = await waiting.stop("SIGTERM", 10_000);
  assert.equal(stopped.code, 0);
  assert.match(waiting.output, /Stopped before the broker could be reached/);
});

Deno.test({
  name: "startup retry: a setting to fix (a database the server lacks) exits at once, no retry",
  ignore: WITHOUT_REDIS,
}, async () => {
  const worker = Proc.start("worker", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "--app",
    "./tests/apps/first_contact_app.ts",
    "--broker",
    "redis://127.0.0.1:6379/99",
    "--backend",
    "redis://127.0.0.1:6379/99",
  ], { env: { NO_COLOR: "1" } });
  const status = await worker.child.status;
  await worker.stop();
  assert.equal(status.code, 1);
  assert.match(worker.output, /database 99 does not exist/);
  assert.doesNotMatch(worker.output, /Trying again/);
});

Deno.test("startup retry: a signal while the connect hangs (the server accepts, never answers) stops the worker", async () => {
  using ports = reservePorts();
  await using server = new SilentServer(ports.base);
  const waiting = workerCli(ports.base);
  await server.accepted;
  const stopped = await waiting.stop("SIGTERM", 10_000);
  assert.equal(stopped.code, 0, waiting.output);
  assert.match(waiting.output, /Stopped before the broker could be reached/);
});
