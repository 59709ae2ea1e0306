/**
 * Early acknowledgement (the default) is written when a task starts in its
 * Web Worker, not when it is handed over: tasks queued in a Web Worker
 * behind a synchronous task that holds its thread are not acknowledged, and
 * a worker killed (`kill -9`) then loses none of them: their leases run out
 * and another worker runs them all. Before, each was acknowledged as it was
 * handed over and never came back. Real brokers: Redis under a prefix of its
 * own, and a KV file, each with a visibility timeout of 2 s.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { exists, until } from "./helpers/waits.ts";

/** Tasks queued behind the blocking one. */
const N = 6;

/** One Web Worker, one task at a time on it, up to 8 held. */
const ARGS = ["--app", "tests/apps/start_ack_app.ts", "-c", "1", "--prefetch", "8", "-l", "INFO"];

function runsIn(dir: string): number[] {
  const text = exists(`${dir}/runs`) ? Deno.readTextFileSync(`${dir}/runs`) : "";
  return text.split("\n").filter(Boolean).map(Number).sort((a, b) => a - b);
}

async function killedWithQueuedTasks(broker: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "start-ack-" });
  const env = { SA_BROKER: broker, SA_DIR: dir };
  const client = new Celery({ broker, backend: null });
  let first: Proc | undefined;
  let second: Proc | undefined;
  try {
    first = await celeriacWorker(ARGS, env);
    await client.sendTask("sa.block", []);
    await until("the blocking task started", () => exists(`${dir}/blocking`));
    for (let i = 0; i < N; i++) await client.sendTask("sa.mark", [i]);
    const received = /Task sa\.mark\[[^\]]+\] received/g;
    await until(`${N} tasks handed to the Web Worker`, () => {
      return (first!.output.match(received)?.length ?? 0) === N;
    });
    // A few start ticks: none of them started, so none is acknowledged.
    await new Promise((r) => setTimeout(r, 200));
    first.signal("SIGKILL");
    await first.finished();
    assert.deepEqual(runsIn(dir), [], "a queued task ran before the kill");
    await Deno.writeTextFile(`${dir}/gate`, "");
    second = await celeriacWorker(ARGS, env);
    // Their leases run out (2 s), a sweep restores them: before the fix, none ever came back.
    await until(`the ${N} queued tasks run again`, () => runsIn(dir).length >= N);
    assert.deepEqual(runsIn(dir), Array.from({ length: N }, (_, i) => i));
  } finally {
    first?.signal("SIGKILL");
    await first?.finished();
    await second?.stop();
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("early ack, KV: tasks queued behind a running one come back after a kill -9", async () => {
  const dir = await Deno.makeTempDir({ prefix: "start-ack-kv-" });
  try {
    await killedWithQueuedTasks(`kv://${dir}/broker.sqlite?visibility_timeout=2`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "early ack, Redis: tasks queued behind a running one come back after a kill -9",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("start-ack");
  try {
    await killedWithQueuedTasks(
      `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}&visibility_timeout=2`,
    );
  } finally {
    await deleteKeys(prefix);
  }
});
