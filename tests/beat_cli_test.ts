/**
 * The command line: `worker.ts beat` (and `--list`), `worker.ts schedule
 * list|add|remove` reaching a running beat, `worker.ts worker -B`, and bad
 * input.
 */

import assert from "node:assert/strict";
import { runCliCases } from "./helpers/cli_batch.ts";
import { reservePorts } from "./helpers/ports.ts";
import { Proc, redisServerProc, startBeatApp } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Run the CLI; a command still running after 20 s is stopped (SIGTERM), so a hang fails the test. */
async function cli(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args, "--app", "tests/apps/beat_app.ts"],
    env,
    signal: AbortSignal.timeout(20_000),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function withKv(fn: (env: Record<string, string>) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-cli-" });
  try {
    await fn({ BEAT_BROKER: `kv://${dir}/b.sqlite`, BEAT_QUEUE: "ticks", BEAT_EVERY: "60" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("beat CLI: schedule add/list/remove reach a running beat; beat --list", async () => {
  await withKv(async (env) => {
    const beat = startBeatApp("beat", ["--max-interval", "0.5"], env);
    try {
      await beat.waitFor(/is the leader/);
      const add = await cli([
        "schedule",
        "add",
        "dyn",
        "--task",
        "beat.tick",
        "--every",
        "1s",
        "--args",
        "[5]",
        "--queue",
        "ticks",
        "--expires",
        "30",
      ], env);
      assert.equal(add.code, 0, add.text);
      assert.match(add.text, /Stored entry "dyn"/);
      await beat.waitFor(
        /Sending due task dyn \(beat\.tick\) id [0-9a-f-]{36}, next run \d{4}-\d\d-\d\dT/,
        10_000,
      );

      const list = await cli(["beat", "--list"], env);
      assert.equal(list.code, 0, list.text);
      assert.match(list.text, /NAME\s+TASK\s+SCHEDULE\s+LAST RUN\s+NEXT RUN\s+RUNS\s+FROM/);
      assert.match(list.text, /dyn\s+beat\.tick\s+every 1s\s+\S+\s+\S+\s+\d+\s+store/);
      assert.match(list.text, /tick\s+beat\.tick\s+every 1m\s+/);
      assert.match(list.text, /2 entries; leader: beat-\S+ \(token \d+\)/);
      const same = await cli(["schedule", "list"], env);
      assert.match(same.text, /2 entries/);

      const remove = await cli(["schedule", "remove", "dyn"], env);
      assert.equal(remove.code, 0, remove.text);
      await new Promise((r) => setTimeout(r, 1000));
      const sent = beat.output.match(/Sending due task dyn/g)!.length;
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(beat.output.match(/Sending due task dyn/g)!.length, sent, "removed: not sent");
      const again = await cli(["schedule", "remove", "dyn"], env);
      assert.equal(again.code, 1);
      assert.match(again.text, /No entry "dyn"/);
    } finally {
      await beat.stop();
    }
    assert.match(beat.output, /stopped after sending \d+ task\(s\)/);
  });
});

Deno.test("beat CLI: schedule add/remove say what happens when no beat runs and to a configured entry", async () => {
  // `schedule add` said "the running beat leader picks it up" with no beat
  // running; `schedule remove` of an entry of the app's beatSchedule said
  // "Removed entry" and the entry was gone from the table, config and all.
  await withKv(async (env) => {
    const add = await cli(
      ["schedule", "add", "dyn", "--task", "beat.tick", "--every", "5s", "--args", "[1]"],
      env,
    );
    assert.equal(add.code, 0, add.text);
    assert.match(
      add.text,
      /Stored entry "dyn"; no beat leads now: the next beat to start sends it/,
    );
    const removeDyn = await cli(["schedule", "remove", "dyn"], env);
    assert.match(removeDyn.text, /^Removed entry "dyn"$/m);

    const remove = await cli(["schedule", "remove", "tick"], env);
    assert.equal(remove.code, 0, remove.text);
    assert.match(
      remove.text,
      /Removed entry "tick" \(the app's beatSchedule has it: hidden until schedule add gives it again\)/,
    );
    // The hidden entry of the app's config stays in the table, marked (it vanished from it).
    const hidden = (await cli(["beat", "--list"], env)).text;
    assert.match(hidden, /tick\s+beat\.tick\s+REMOVED: not sent \(schedule add gives it again\)/);
    assert.match(hidden, /0 entries \(and 1 removed\); leader: none/);
    await cli(
      ["schedule", "add", "tick", "--task", "beat.tick", "--every", "1m", "--args", "[1]"],
      env,
    );
    assert.match((await cli(["beat", "--list"], env)).text, /tick\s+beat\.tick\s+every 1m/);
  });
});

Deno.test("beat CLI: Celery's -s / --schedule FILE is accepted and says where beat's state is", async () => {
  // It was "unknown option -s" (exit 2) for a unit file carried over from Celery.
  await withKv(async (env) => {
    const file = `${env.BEAT_BROKER.slice("kv://".length)}.schedule`;
    // Two listings, which only read the store: at once.
    const outs = await Promise.all(
      ["-s", "--schedule"].map((flag) => cli(["beat", "--list", flag, file], env)),
    );
    for (const out of outs) {
      assert.equal(out.code, 0, out.text);
      assert.match(
        out.text,
        new RegExp(
          `--schedule ${file} \\(Celery's schedule file\\) is not used: beat keeps its lease and ` +
            `last runs in its store, ${env.BEAT_BROKER}, shared by its replicas; to keep them ` +
            `in a file, give --beat-store kv://${file}`,
        ),
      );
      assert.match(out.text, /tick\s+beat\.tick/);
    }
    assert.equal(await Deno.stat(file).then(() => true, () => false), false);
  });
});

Deno.test("beat CLI: bad input is refused with the entry and the field", async () => {
  await withKv(async (env) => {
    // Not started by a bad value: one process runs these usage errors (helpers/cli_batch.ts)
    // while the worker below fails to reach its beat store.
    const down = cli(["worker", "-B", "--fail-fast", "--beat-store", "redis://127.0.0.1:1/0"], env);
    const [cron, negative, none, args, priority, lease] = await runCliCases([
      ["schedule", "add", "bad", "--task", "t", "--cron", "61 * * * *"],
      ["schedule", "add", "neg", "--task", "t", "--every=-5"],
      ["schedule", "add", "x", "--task", "t"],
      ["schedule", "add", "x", "--task", "t", "--every", "5", "--args", "["],
      ["schedule", "add", "x", "--task", "t", "--every", "5", "--priority", "high"],
      ["beat", "--lease-time", "0"],
    ].map((args) => ({ args: [...args, "--app", "tests/apps/beat_app.ts"], env })));
    assert.equal(cron.code, 2);
    assert.match(cron.err, /beat entry "bad", schedule \(crontab minute\): "61" is not a valid/);
    assert.equal(negative.code, 2);
    assert.match(negative.err, /beat entry "neg", schedule: .*"-5"/);
    assert.match(none.err, /exactly one of --every/);
    assert.match(args.err, /--args needs JSON/);
    assert.equal(priority.code, 2);
    assert.match(priority.err, /--priority needs a whole number >= 0, got "high"/);
    assert.equal(lease.code, 2);
    assert.match(lease.err, /--lease-time needs a number of seconds > 0/);
    const list = await cli(["schedule", "list"], env);
    assert.match(list.text, /1 entry; leader: none/, "nothing bad was stored");
    const stopped = await down;
    assert.equal(stopped.code, 1);
    assert.match(stopped.text, /error: Cannot (reach|connect to) redis:\/\/127\.0\.0\.1:1\/0/);
    assert.doesNotMatch(stopped.text, / ready: /, "the worker does not start without its beat");
  });
});

Deno.test("beat CLI: a typo'd option in beatSchedule stops beat and worker -B at start", async () => {
  // The entry was logged and skipped while beat started and ran on: a typo
  // showed as a task that never came.
  await withKv(async (env) => {
    const typo = { ...env, BEAT_OPTIONS: '{"countdwn": 5}' };
    const message =
      /error: beat entry "tick", options\.countdwn: unknown option \(did you mean "countdown"\?\)/;
    // Each refuses the schedule alone: they run at once.
    const [beat, worker] = await Promise.all([
      cli(["beat"], typo),
      cli(["worker", "-B", "-Q", "ticks"], typo),
    ]);
    assert.equal(beat.code, 1, beat.text);
    assert.match(beat.text, message);
    assert.equal(worker.code, 1, worker.text);
    assert.match(worker.text, message);
    assert.doesNotMatch(worker.text, / ready: /, "the worker does not start with a bad schedule");
  });
});

/** A worker with beat inside (`worker -B`) on queue `ticks`, beat_app sending `tick` every second. */
function startWorkerWithBeat(name: string, env: Record<string, string>, more: string[] = []): Proc {
  return Proc.start(name, Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "worker",
    "-B",
    "--loglevel",
    "INFO",
    "--app",
    "tests/apps/beat_app.ts",
    "-Q",
    "ticks",
    "-c",
    "1",
    "--lease-time",
    "3",
    "--max-interval",
    "0.5",
    ...more,
  ], { env: { ...env, BEAT_EVERY: "1" } });
}

Deno.test("beat CLI: worker -B runs beat inside a worker, which runs what it sends", async () => {
  await withKv(async (env) => {
    const worker = startWorkerWithBeat("worker -B", env);
    try {
      await worker.waitFor(/is the leader/);
      await worker.waitFor(
        /Sending due task tick \(beat\.tick\) id ([0-9a-f-]{36})[^]*Task beat\.tick\[[0-9a-f-]{36}\] received/,
        15_000,
      );
    } finally {
      await worker.stop();
    }
    assert.match(worker.output, /beat: \S+ stopped after sending/);
  });
});

Deno.test("beat CLI: two workers with -B share one leader: each run is sent and run once", async () => {
  await withKv(async (env) => {
    const a = startWorkerWithBeat("worker A -B", env);
    const b = startWorkerWithBeat("worker B -B", env);
    const sent = () =>
      [a, b].flatMap((p) =>
        [...p.output.matchAll(/Sending due task tick \(beat\.tick\) id ([0-9a-f-]{36})/g)].map((
          m,
        ) => m[1])
      );
    const received = () =>
      [a, b].flatMap((p) =>
        [...p.output.matchAll(/Task beat\.tick\[([0-9a-f-]{36})\] received/g)].map((m) => m[1])
      );
    try {
      // Three sends, each received by a worker before they stop.
      const deadline = Date.now() + 20_000;
      while ((sent().length < 3 || received().length < sent().length) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      // The follower first: stopped together, a follower whose SIGTERM is handled late takes the
      // lease the leader's stop released (see beat_replicas).
      const follower = /is the leader/.test(a.output) ? b : a;
      await follower.stop();
      await (follower === a ? b : a).stop();
    }
    const ids = sent();
    assert.ok(ids.length >= 3, `${a.output}\n${b.output}`);
    const leaders = [a, b].filter((p) => /is the leader/.test(p.output));
    assert.equal(leaders.length, 1, `one leader:\n${a.output}\n${b.output}`);
    const leader = leaders[0].output.match(/beat: (\S+) is the leader/)![1];
    const standby = [a, b].find((p) => p !== leaders[0])!;
    assert.match(
      standby.output,
      new RegExp(`beat: ${leader} leads \\(fencing token \\d+\\); \\S+ stands by to take over`),
      "the other says it stands by, and for whom",
    );
    const run = received();
    assert.equal(new Set(run).size, run.length, "no task received twice");
    for (const id of run) assert.ok(ids.includes(id));
    assert.ok(run.length >= ids.length - 1, `sent ${ids.length}, run ${run.length}`);
  });
});

Deno.test("beat CLI: a broker down at start is tried again (as Celery's beat) and sent to once up", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const env = { BEAT_BROKER: `redis://127.0.0.1:${port}/0`, BEAT_QUEUE: "ticks", BEAT_EVERY: "1" };
  const failFast = await cli(["beat", "--fail-fast"], env);
  assert.equal(failFast.code, 1, failFast.text);
  assert.match(failFast.text, /connection refused: nothing listens on/);
  const start = () => startBeatApp("beat", ["--max-interval", "0.5"], env);
  const stopped = start();
  await stopped.waitFor(/Trying again in 2 s \(1\/100; --fail-fast exits instead\)/);
  const asked = Date.now();
  const status = await stopped.stop();
  assert.equal(status.code, 0, stopped.output);
  assert.ok(Date.now() - asked < 5000, "a signal while it waits stops it at once");
  const beat = start();
  // worker -B with its broker up and its --beat-store (the same server) down: the worker waits too.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-cli-" });
  const worker = startWorkerWithBeat("worker -B", {
    BEAT_BROKER: `kv://${dir}/b.sqlite`,
    BEAT_QUEUE: "ticks",
  }, ["--beat-store", env.BEAT_BROKER]);
  let server: Proc | null = null;
  try {
    await beat.waitFor(/Trying again in 2 s/);
    await worker.waitFor(/Trying again in 2 s/);
    assert.doesNotMatch(worker.output, / ready: /);
    server = redisServerProc(port);
    await server.waitFor(/Ready to accept connections/);
    await worker.waitFor(/ ready: /, 20_000);
    const sent = /Sending due task tick \(beat\.tick\)/;
    const deadline = Date.now() + 20_000;
    while (![beat, worker].some((p) => sent.test(p.output)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok([beat, worker].some((p) => sent.test(p.output)), beat.output + worker.output);
    // The worker may send first while beat still waits out its back-off (2 s, then 4 s, …).
    await beat.waitFor(/Connected after \d+ attempt/, 20_000);
  } finally {
    await Promise.all([beat.stop(), worker.stop()]);
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
  assert.match(beat.output, /Connected after \d+ attempt/);
  assert.match(worker.output, /Connected after \d+ attempt/);
});
