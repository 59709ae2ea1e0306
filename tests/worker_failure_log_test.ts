/**
 * The worker logs a failing task as Celery 5.2 does: at ERROR,
 * `Task <name>[<id>] raised unexpected: <ExcType>('<msg>')` followed by the
 * traceback — here the stack of the Web Worker that ran it, line by line —
 * and a retry at INFO, `Task <name>[<id>] retry: Retry in <n>s: <exc repr>`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker, celeriacWorkerArgs } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "worker failure log: ERROR with the Web Worker's stack; a retry at INFO",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("faillog");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `faillog-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker(
    celeriacWorkerArgs({ app: "./tests/apps/worker_app.ts", url, queue }, ["--loglevel", "INFO"]),
  );
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    const failed = await client.sendTask("t.fail", ["bad input"]);
    await assert.rejects(failed.get({ timeout: 20_000 }), /bad input/);
    const retried = await client.sendTask<number>("t.retry_twice", [7]);
    await retried.get({ timeout: 20_000 });
    await worker.stop("SIGTERM");
    const out = worker.output;
    const failure = new RegExp(
      String.raw`\[ERR\] celeriac·worker·task: Task t\.fail\[${failed.id}\] raised unexpected: ` +
        String.raw`TypeError\('bad input'\)\nTypeError: bad input\n {4}at .*worker_app\.ts:\d+:\d+`,
    );
    const around = (s: string) =>
      out.slice(Math.max(0, out.indexOf(s) - 200), out.indexOf(s) + 600);
    assert.match(
      out,
      failure,
      `ERROR, Celery's text, then the Web Worker's stack: ${around("t.fail[")}`,
    );
    assert.match(
      out,
      new RegExp(
        String.raw`\[INF\] celeriac·worker·task: Task t\.retry_twice\[${retried.id}\] retry: ` +
          String.raw`Retry in 0\.1s: KeyError\('transient'\)\n`,
      ),
      `a retry at INFO with the exception's repr, no traceback: ${around("retry:")}`,
    );
  } finally {
    await worker.stop("SIGKILL");
    await client.close();
    await deleteKeys(prefix);
  }
});
