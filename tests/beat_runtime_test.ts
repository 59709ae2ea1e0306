/**
 * An in-process beat: run-time add/change/remove reach the running leader,
 * a bad entry of the app's schedule stops beat at start, bad stored entries
 * are skipped without stopping the others, unregistered tasks
 * warn once, and an unreachable store stops sending (and nothing crashes)
 * until it is back.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { reservePorts } from "./helpers/ports.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import {
  at,
  Beat,
  BeatEntryError,
  BeatStoreError,
  Celery,
  crontab,
  PeriodicTasks,
} from "../mod.ts";
import { type Message, PUBLISHER } from "../protocol.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function capturingApp(options: ConstructorParameters<typeof Celery>[0]) {
  const app = new Celery(options);
  const sent: Message[] = [];
  app[PUBLISHER] = (m) => {
    sent.push(m);
    return Promise.resolve();
  };
  const count = (task: string) => sent.filter((m) => m.headers.task === task).length;
  return { app, sent, count };
}

Deno.test("beat: run-time add, change and remove reach the running leader", async () => {
  const logs = await captureLogs("debug");
  const dir = await Deno.makeTempDir();
  const { app, sent, count } = capturingApp({
    broker: `kv://${dir}/b.sqlite`,
    beatSchedule: {
      fixed: { task: "t.fixed", schedule: 0.3 },
      nightly: { task: "t.nightly", schedule: crontab({ minute: 0, hour: 3 }) },
    },
  });
  const tick = app.task("t.tick", (n: number) => n);
  const beat = new Beat({ app, leaseTime: 2, maxInterval: 0.2 });
  const periodic = new PeriodicTasks(app);
  try {
    // A bad stored entry (written by hand, or by an older version) is skipped; the others run.
    await (await periodic.store()).putEntry(
      "broken",
      JSON.stringify({ task: "t.broken", schedule: -1 }),
    );
    await beat.start();
    await until(() => count("t.fixed") >= 2, "the config entry");
    assert.ok(beat.isLeader);
    assert.ok(
      logs.some((r) =>
        r.level === "error" &&
        /beat entry "broken", schedule: an interval must be a positive number/
          .test(text(r))
      ),
      "a bad entry is logged with its name and field",
    );
    assert.equal(count("t.broken"), 0);

    // Add, typed for the local task.
    await periodic.add("dyn", { task: tick, schedule: "200ms", args: [7] });
    await until(() => count("t.tick") >= 2, "the added entry");
    const firstArgs = JSON.parse(new TextDecoder().decode(
      sent.find((m) => m.headers.task === "t.tick")!.body as Uint8Array,
    ))[0];
    assert.deepEqual(firstArgs, [7]);
    assert.equal(app.tasks.has("t.tick"), true);

    // Change.
    await periodic.add("dyn", { task: tick, schedule: "200ms", args: [8] });
    await until(() => sent.some((m) => m.headers.argsrepr === "[8]"), "the changed entry");

    // List.
    const rows = await periodic.list();
    assert.deepEqual(rows.map((r) => [r.name, r.origin]), [
      ["broken", "store"],
      ["dyn", "store"],
      ["fixed", "config"],
      ["nightly", "config"],
    ]);
    assert.match(rows[0].error ?? "", /positive/);
    assert.equal(rows[3].nextRunAt?.getUTCHours(), 3);
    assert.ok(rows[2].totalRunCount >= 2);

    // Remove a run-time entry and a config entry.
    assert.equal(await periodic.remove("dyn"), true);
    assert.equal(await periodic.remove("fixed"), true);
    assert.equal(await periodic.remove("fixed"), false);
    assert.equal(await periodic.remove("nope"), false);
    await sleep(500);
    const [ticks, fixed] = [count("t.tick"), count("t.fixed")];
    await sleep(800);
    assert.equal(count("t.tick"), ticks, "a removed entry is no longer sent");
    assert.equal(count("t.fixed"), fixed);

    // Unregistered task names: sent all the same, with one warning per entry.
    await periodic.add("remote", { task: "py.remote", schedule: "200ms" });
    await until(() => count("py.remote") >= 3, "the remote entry");
    const warnings = logs.filter((r) => /does not register/.test(text(r))).map(text);
    assert.equal(
      warnings.filter((w) => /entry "remote" sends task "py\.remote"/.test(w)).length,
      1,
    );
    assert.equal(warnings.filter((w) => /entry "fixed"/.test(w)).length, 1, "once, not per send");
    assert.equal(warnings.filter((w) => /entry "dyn"/.test(w)).length, 0, "t.tick is registered");
  } finally {
    await beat.stop();
    await periodic.close();
    await app.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("beat: an amqp:// broker without beatStore is refused with what to set", async () => {
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:5672//" });
  await assert.rejects(() => new Beat({ app }).start(), (err: unknown) => {
    assert.ok(err instanceof BeatStoreError);
    assert.equal(err.code, "BEAT_STORE_UNSUITABLE");
    assert.match(err.message, /set beatStore to a redis:\/\/ or kv:\/\/ URL/);
    assert.doesNotMatch(err.message, /guest:guest/);
    return true;
  });
  assert.throws(() => new Beat({ app, leaseTime: -1 }), /leaseTime must be a positive/);
  // Before: taken, and each sleep of the loop (a timer over 24.8 days) ended after 1 ms.
  assert.throws(
    () => new Beat({ app, maxInterval: 3_000_000 }),
    /maxInterval must be a positive number of seconds, at most 2147483\.647 \(24\.8 days, what a timer holds\), got 3000000/,
  );
  assert.throws(() => new Beat({ app, leaseTime: 2_147_484 }), /leaseTime .* at most 2147483\.647/);
});

Deno.test("beat: the last run of an entry gone from the code is forgotten, as Celery's beat does", async () => {
  // It was kept: given again months later (same name), the entry was sent at
  // once at start, for a slot missed long ago, where Celery's beat starts it afresh.
  const dir = await Deno.makeTempDir();
  const broker = `kv://${dir}/b.sqlite`;
  const runBeat = async (beatSchedule: Record<string, { task: string; schedule: number }>) => {
    const { app, count } = capturingApp({ broker, beatSchedule });
    const beat = new Beat({ app, leaseTime: 2, maxInterval: 0.1 });
    await beat.start();
    await until(() => count("t.keep") >= 1, "a send");
    await beat.stop();
    const periodic = new PeriodicTasks(app);
    const runs = await (await periodic.store()).readRuns();
    await periodic.close();
    await app.close();
    return runs;
  };
  try {
    const first = await runBeat({
      keep: { task: "t.keep", schedule: 0.2 },
      gone: { task: "t.gone", schedule: 0.2 },
    });
    assert.deepEqual([...first.keys()].sort(), ["gone", "keep"]);
    const second = await runBeat({ keep: { task: "t.keep", schedule: 0.2 } });
    assert.deepEqual([...second.keys()], ["keep"], "the state of the entry gone is dropped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("beat: a bad entry of beatSchedule is refused at start, before connecting", async () => {
  const app = new Celery({
    broker: "redis://127.0.0.1:1/0",
    beatSchedule: {
      ok: { task: "t.ok", schedule: 5 },
      typo: { task: "t.typo", schedule: 5, options: { countdwn: 5 } as never },
    },
  });
  await assert.rejects(() => new Beat({ app }).start(), (err: unknown) => {
    assert.ok(err instanceof BeatEntryError, String(err));
    assert.equal(err.entry, "typo");
    assert.equal(err.field, "options.countdwn");
    assert.match(err.message, /did you mean "countdown"\?/);
    return true;
  });
  await app.close();
});

Deno.test("beat: a store that goes away stops sending, nothing crashes, and it resumes", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const startRedis = () =>
    new Deno.Command("redis-server", {
      args: ["--port", String(port), "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
  const listening = async () => {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return;
      } catch {
        // not yet listening
      }
    }
    throw new Error(`redis-server on ${port} did not start`);
  };
  let server = startRedis();
  try {
    await listening();
    const logs = await captureLogs("debug");
    const { app, count } = capturingApp({
      broker: "kv://:memory:",
      beatStore: `redis://127.0.0.1:${port}/0`,
      beatSchedule: { fast: { task: "t.fast", schedule: 0.2 } },
    });
    const beat = new Beat({ app, leaseTime: 1.5, maxInterval: 0.2 });
    try {
      await beat.start();
      await until(() => count("t.fast") >= 2, "sends");
      server.kill("SIGKILL");
      await server.status;
      await until(
        () => logs.some((r) => /schedule store unreachable/.test(text(r))),
        "the store error",
      );
      await sleep(1600); // past the lease: the beat may no longer send
      const during = count("t.fast");
      await sleep(1000);
      assert.equal(count("t.fast"), during, "no sends while the store is down");
      server = startRedis();
      await until(() => count("t.fast") > during, "sending again", 15_000);
      assert.ok(logs.some((r) => /schedule store reachable again/.test(text(r))));
    } finally {
      await beat.stop();
      await app.close();
      await reset();
    }
  } finally {
    // Also when it never listened, or the test failed while it was down (killed already).
    try {
      server.kill("SIGKILL");
    } catch {
      // already exited
    }
    await server.status;
  }
});

Deno.test({
  name: "beat: on RabbitMQ, tasks go to RabbitMQ and the lease and last runs to beatStore",
  ignore: WITHOUT_RABBITMQ,
  async fn() {
    const vhost = await createVhost("beat");
    const dir = await Deno.makeTempDir();
    const app = new Celery({
      broker: vhost.url(),
      backend: null,
      beatStore: `kv://${dir}/beat.sqlite`,
      beatSchedule: { once: { task: "t.once", schedule: at(Date.now()), options: { queue: "q" } } },
    });
    const beat = new Beat({ app, maxInterval: 0.2 });
    try {
      await beat.start();
      await until(() => beat.sent === 1, "the send");
      assert.equal(await app.queueDepth("q"), 1);
      const periodic = new PeriodicTasks(app);
      const rows = await periodic.list();
      await periodic.close();
      assert.equal(rows[0].totalRunCount, 1);
      assert.equal(rows[0].nextRunAt, null, "a one-off never runs again");
    } finally {
      await beat.stop();
      await app.close();
      await vhost.remove();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Two apps on one temporary KV file with a 1 s entry, and a beat on each (30 s lease, waking
 * every 0.2 s); `close` stops both beats, closes both apps and removes the file.
 */
async function twoBeats() {
  const dir = await Deno.makeTempDir();
  const options = {
    broker: `kv://${dir}/b.sqlite`,
    beatSchedule: { t: { task: "t", schedule: 1 } },
  };
  const [one, two] = [capturingApp(options), capturingApp(options)];
  const a = new Beat({ app: one.app, hostname: "beat-a", leaseTime: 30, maxInterval: 0.2 });
  const b = new Beat({ app: two.app, hostname: "beat-b", leaseTime: 30, maxInterval: 0.2 });
  const close = async () => {
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([one.app.close(), two.app.close()]);
    await Deno.remove(dir, { recursive: true });
  };
  return { two, a, b, close };
}

Deno.test("beat: a leader's stop hands the lease to a beat still running, at its next wake", async () => {
  // Why beat_replicas stops the follower first: stopped together, a follower whose stop comes
  // late (a loaded machine) takes the lease the leader released, and both have led.
  const { a, b, close } = await twoBeats();
  try {
    await a.start();
    await until(() => a.isLeader, "A leads");
    await b.start();
    await a.stop();
    // Within B's next wake (0.2 s), not when A's 30 s lease would have run out.
    await until(() => b.isLeader, "B leads after A's stop", 10_000);
  } finally {
    await close();
  }
});

Deno.test("beat: a standby beat opens the app's broker at start, before it leads", async () => {
  // A standby that opened its broker on its first send paid the broker module's load and the
  // connection on taking over: CI at load 9 sent the missed run 592 ms after the takeover.
  const { two, a, b, close } = await twoBeats();
  let opened = 0;
  const open = two.app.broker.bind(two.app);
  two.app.broker = (o) => {
    opened++;
    return open(o);
  };
  try {
    await a.start();
    await until(() => a.isLeader, "A leads");
    await b.start();
    assert.equal(b.isLeader, false);
    assert.equal(opened, 1, "the standby opened the broker its sends go out on");
  } finally {
    await close();
  }
});

Deno.test("beat: the start line shows the store's query (its key prefix)", async () => {
  // It showed redis://…/9 without ?global_keyprefix=, though every key was prefixed.
  const logs = await captureLogs("info");
  const dir = await Deno.makeTempDir();
  const { app } = capturingApp({
    broker: `kv://${dir}/b.sqlite?prefix=pre_`,
  });
  const beat = new Beat({ app, leaseTime: 2, maxInterval: 0.2 });
  try {
    await beat.start();
    const line = logs.map((r) => r.message.map(String).join("")).find((m) =>
      m.startsWith("beat: Starting")
    );
    assert.match(line ?? "", /store kv:\/\/.*\/b\.sqlite\?prefix=pre_$/);
  } finally {
    await beat.stop();
    await app.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
