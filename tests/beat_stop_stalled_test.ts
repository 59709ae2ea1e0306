/**
 * Beat stops while a publish hangs on a stalled broker (a private redis-server stopped with
 * SIGSTOP: the kernel still takes the LPUSH, nothing answers). stop() gives the publish up, and
 * says that run was not sent; before, it waited for the loop stuck in the publish, and so did
 * `worker.ts beat` on SIGTERM (review 33: still running 17 s after SIGTERM, SIGTERM, SIGINT).
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { Beat, Celery } from "../mod.ts";
import { decodeRunState, openScheduleStore } from "../protocol.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { reservePorts } from "./helpers/ports.ts";
import { type RedisProcess, startRedis } from "./helpers/redis_servers.ts";
import { type Proc, startBeatApp } from "./helpers/procs.ts";
import { until } from "./helpers/waits.ts";

Deno.test("beat: stop() gives up a publish hanging on a stalled broker", async () => {
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-stall-" });
  const redis = await startRedis(ports.base, dir);
  const store = await openScheduleStore("kv://:memory:");
  const logs: LogRecord[] = await captureLogs("info");
  const app = new Celery({
    broker: `redis://127.0.0.1:${ports.base}/0`,
    backend: null,
    beatSchedule: { tick: { task: "t.tick", schedule: "300ms", options: { queue: "q" } } },
  });
  const beat = new Beat({ app, store, leaseTime: 30, maxInterval: 0.2 });
  let stopped = false;
  try {
    await beat.start();
    await until("a first send", () => beat.sent >= 1);
    redis.child.kill("SIGSTOP");
    const sentBefore = beat.sent;
    // A run recorded and not sent: its publish is the one hanging.
    const recorded = async () =>
      decodeRunState((await store.readRuns()).get("tick"))?.totalRunCount ?? 0;
    await until("a run's publish hanging", async () => await recorded() > beat.sent);
    const stopping = beat.stop().then(() => stopped = true);
    // Before the fix, stop() waited for the broker: this deadline failed the test.
    await until("stop() to resolve", () => stopped);
    await stopping;
    assert.equal(beat.sent, sentBefore, "the hanging run is not counted as sent");
    const lines = logs.map(logLine);
    assert.ok(
      lines.some((l) =>
        /^warning beat: stopped while sending entry "tick" \(t\.tick\): .* this run is not sent/
          .test(l)
      ),
      lines.join("\n"),
    );
    assert.ok(!lines.some((l) => /failed after the publish retries/.test(l)), lines.join("\n"));
  } finally {
    redis.child.kill("SIGCONT");
    await beat.stop();
    await app.close();
    await store.close();
    await reset();
    await redis.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/**
 * `worker.ts beat` on a broker stalled while a publish hangs, stopped by `stop`: resolves
 * with its exit code and output once it exited (a deadline fails the test if it does not).
 */
async function stopStalledCli(
  stop: (beat: Proc) => Promise<void>,
): Promise<{ code: number; output: string }> {
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-stall-cli-" });
  let redis: RedisProcess | null = null;
  let beat: Proc | null = null;
  let store: Awaited<ReturnType<typeof openScheduleStore>> | null = null;
  try {
    redis = await startRedis(ports.base, dir);
    const storeUrl = `kv://${dir}/beat.sqlite`;
    beat = startBeatApp("beat", ["--max-interval", "0.2", "--beat-store", storeUrl], {
      BEAT_BROKER: `redis://127.0.0.1:${ports.base}/0`,
      BEAT_EVERY: "0.3",
      BEAT_QUEUE: "q",
    });
    await beat.waitFor(/Sending due task tick/);
    redis.child.kill("SIGSTOP");
    store = await openScheduleStore(storeUrl);
    const sends = () => beat!.output.match(/Sending due task tick/g)?.length ?? 0;
    const recorded = async () =>
      decodeRunState((await store!.readRuns()).get("tick"))?.totalRunCount ?? 0;
    await until("a run's publish hanging", async () => await recorded() > sends());
    await stop(beat);
    let exited: Deno.CommandStatus | null = null;
    beat.finished().then((s) => exited = s);
    // Before the fix, beat kept running until the broker resumed: this deadline failed the test.
    await until("beat to exit", () => exited !== null);
    return { code: exited!.code, output: beat.output };
  } finally {
    redis?.child.kill("SIGCONT");
    await beat?.stop("SIGKILL");
    await store?.close();
    await redis?.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("beat CLI: SIGTERM stops beat while a publish hangs on a stalled broker", async () => {
  const { code, output } = await stopStalledCli((beat) => {
    beat.signal("SIGTERM");
    return Promise.resolve();
  });
  assert.equal(code, 0, output);
  assert.match(
    output,
    /stopped while sending entry "tick" \(beat\.tick\): .* this run is not sent/,
  );
  assert.match(output, /stopped after sending \d+ task\(s\)/);
});

Deno.test("beat CLI: a second SIGINT exits at once", async () => {
  const { code, output } = await stopStalledCli(async (beat) => {
    beat.signal("SIGINT");
    // Beat stopped; the app's close waits for the stalled broker's connection (2 s).
    await beat.waitFor(/stopped after sending/);
    beat.signal("SIGINT");
  });
  assert.equal(code, 0, output);
  assert.match(output, /second signal: exiting now/);
});
