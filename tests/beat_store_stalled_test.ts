/**
 * Beat stops while its schedule store hangs: the default set-up, where the store is the Redis
 * broker itself, a private redis-server stopped with SIGSTOP (the kernel still takes the
 * commands, nothing answers). Before, stop() (and `worker.ts beat` on SIGTERM) waited for the
 * store call the loop was blocked in, until the server resumed (review 41: still pending 20 s
 * after stop(), beat still running 15 s after SIGTERM).
 */

import assert from "node:assert/strict";
import { Beat, Celery } from "../mod.ts";
import { reservePorts } from "./helpers/ports.ts";
import { startRedis } from "./helpers/redis_servers.ts";
import { type Proc, startBeatApp } from "./helpers/procs.ts";
import { until } from "./helpers/waits.ts";

/** Let the loop block on the stalled server: its steps run every 0.1-0.2 s. */
const blocked = () => new Promise((r) => setTimeout(r, 600));

Deno.test("beat: stop() gives up a store call hanging on a stalled Redis (store = broker)", async () => {
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-store-stall-" });
  const redis = await startRedis(ports.base, dir);
  const app = new Celery({
    broker: `redis://127.0.0.1:${ports.base}/0`,
    backend: null,
    beatSchedule: { tick: { task: "t.tick", schedule: "200ms", options: { queue: "q" } } },
  });
  const beat = new Beat({ app, leaseTime: 30, maxInterval: 0.1 });
  let stopped = false;
  try {
    await beat.start();
    await until("two sends", () => beat.sent >= 2);
    redis.child.kill("SIGSTOP");
    await blocked();
    const stopping = beat.stop().then(() => stopped = true);
    // Before the fix, stop() waited for the store: this deadline failed the test.
    await until("stop() to resolve", () => stopped);
    await stopping;
  } finally {
    redis.child.kill("SIGCONT");
    await beat.stop();
    await app.close();
    await redis.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("beat CLI: one SIGTERM stops beat whose store (the broker) is stalled", async () => {
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-store-stall-cli-" });
  const redis = await startRedis(ports.base, dir);
  let beat: Proc | null = null;
  try {
    beat = startBeatApp("beat", ["--max-interval", "0.2"], {
      BEAT_BROKER: `redis://127.0.0.1:${ports.base}/0`,
      BEAT_EVERY: "0.3",
      BEAT_QUEUE: "q",
    });
    await beat.waitFor(/Sending due task tick/);
    redis.child.kill("SIGSTOP");
    await blocked();
    beat.signal("SIGTERM");
    let exited: Deno.CommandStatus | null = null;
    beat.finished().then((s) => exited = s);
    // Before the fix, beat kept running until the store resumed: this deadline failed the test.
    await until("beat to exit", () => exited !== null);
    assert.equal(exited!.code, 0, beat.output);
    assert.match(beat.output, /stopped after sending \d+ task\(s\)/);
  } finally {
    redis.child.kill("SIGCONT");
    await beat?.stop("SIGKILL");
    await redis.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
