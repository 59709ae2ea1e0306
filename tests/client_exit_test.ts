/**
 * A client script that is done exits by itself without `app.close()`: no
 * idle connection or file watch keeps the process alive. One whose `get()`
 * is still waiting, with nothing else to do, is not ended under it. Redis (a
 * single server) and KV; not RabbitMQ, whose connection still holds the
 * process (README says to close the app).
 */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const SCRIPT = new URL("./apps/client_no_close.ts", import.meta.url).pathname;
/** Far more than the script needs; only a process that would never exit reaches it. */
const DEADLINE_MS = 60_000;

const { transports, cleanup } = await redisAndKv("client-exit");

/** Run the script; its exit status and output, or a failure when it is still running at the deadline. */
async function runClient(broker: string, backend: string, queue: string, mode: string) {
  const proc = Proc.start("client", Deno.execPath(), [
    "run",
    "-A",
    SCRIPT,
    broker,
    backend,
    queue,
    mode,
  ]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), DEADLINE_MS));
  const status = await Promise.race([proc.finished(), hung]);
  clearTimeout(timer);
  if (status === "hung") {
    await proc.stop("SIGKILL");
    assert.fail(`the client did not exit within ${DEADLINE_MS} ms:\n${proc.output}`);
  }
  return { code: status.code, output: proc.output };
}

for (const t of transports) {
  for (const mode of ["add", "slow"]) {
    Deno.test({
      name: `client without app.close() exits after its result: ${t.name}, ${mode}`,
      ignore: t.name === "redis" && WITHOUT_REDIS,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: () =>
        withWorker(t, {}, async (_client, _worker, queue) => {
          const { code, output } = await runClient(t.broker, t.backend, queue, mode);
          assert.equal(code, 0, output);
          assert.match(output, mode === "add" ? /^result 5$/m : /^result 1500$/m);
        }),
    });
  }
}

Deno.test({
  name: "client exit: cleanup",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, cleanup);
