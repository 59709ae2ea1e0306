/**
 * The monitoring command line against a Celeriac worker on Redis: `call`,
 * `result`, `inspect`, `control`, `status`, `report`, `events --dump`,
 * their exit codes (69 when no worker replies), and the live `events` view
 * driven in tmux (capture-pane shows the worker and the task; `q` quits).
 */

import assert from "node:assert/strict";
import { celeriacWorker, Proc } from "./helpers/procs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("cli-mon");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const QUEUE = `cli-${crypto.randomUUID().slice(0, 8)}`;
const APP = ["--app", "./tests/interop/tasks.ts", "-b", BROKER, "--backend", BROKER];
const ROOT = new URL("../", import.meta.url).pathname;

/** A command, how it exited and what it printed. */
interface Ran {
  command: string;
  code: number;
  out: string;
  err: string;
}

async function cli(...args: string[]): Promise<Ran> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args, ...APP],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    command: args.join(" "),
    code: o.code,
    out: dec.decode(o.stdout),
    err: dec.decode(o.stderr),
  };
}

/** The whole run, for a failure message. */
function show(ran: Ran): string {
  return `\`${ran.command}\` exited ${ran.code}\n--- stdout:\n${ran.out}--- stderr:\n${ran.err}`;
}

/** Assert the exit code and that stdout (`out`) and stderr (`err`) match; failures show the run. */
function expect(ran: Ran, code: number, out: RegExp[] = [], err: RegExp[] = []): void {
  assert.equal(ran.code, code, `expected exit ${code}: ${show(ran)}`);
  for (const re of out) assert.match(ran.out, re, `stdout does not match ${re}: ${show(ran)}`);
  for (const re of err) assert.match(ran.err, re, `stderr does not match ${re}: ${show(ran)}`);
}

/** A successful command's `--json` output; failures show the run. */
function json(ran: Ran): unknown {
  expect(ran, 0);
  try {
    return JSON.parse(ran.out);
  } catch (e) {
    throw new Error(`stdout is not JSON (${(e as Error).message}): ${show(ran)}`);
  }
}

/** call, result, inspect, control, status, report and events --dump against the worker `node`. */
async function commands(node: string): Promise<void> {
  const dump = Proc.start("events --dump", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "events",
    "--dump",
    ...APP,
  ]);
  // `status` has no destination: it waits its whole timeout, long enough
  // for a loaded host (10 s), so it runs alongside the other commands.
  const status = cli("status", "--json", "-t", "10");
  // A destination ends a call at its one reply: a long timeout costs
  // nothing when the node answers, and suits a loaded host.
  const toNode = ["-t", "20", "-d", node];
  try {
    await dump.waitFor(/heartbeat: active=/, 30_000); // subscribed
    // The commands below wait on the worker's replies, not on each other: they run at once.
    const add = (async () => {
      const sent = await cli("call", "tasks.add", "--args", "[2, 3]", "--queue", QUEUE);
      expect(sent, 0, [/^[0-9a-f-]{36}\n$/]);
      const id = sent.out.trim();
      expect(await cli("result", id, "-t", "20"), 0, [/^5\n$/]);
      // A success's traceback is none: an empty line, as Celery prints.
      expect(await cli("result", id, "--traceback", "-t", "20"), 0, [/^\n$/]);
      // After the add ran: the worker's stats count it.
      const stats = await cli("inspect", "stats", ...toNode);
      expect(stats, 0, [new RegExp(`->  ${node}: OK\\n`), /"tasks\.add": 1/]);
      return id;
    })();
    const fail = (async () => {
      const bad = await cli("call", "tasks.fail", "--args", '["boom"]', "--queue", QUEUE);
      expect(bad, 0);
      const failed = await cli("result", bad.out.trim(), "-t", "20");
      expect(failed, 1, [], [/FAILURE: ValueError: boom/]);
      // As `celery result --traceback`: only the stored traceback, on stdout, exit 0.
      const traced = await cli("result", bad.out.trim(), "--traceback", "-t", "20");
      expect(traced, 0, [/Error/, /boom/]);
      assert.doesNotMatch(traced.out, /FAILURE/, show(traced));
      assert.doesNotMatch(traced.err, /FAILURE|boom/, show(traced));
    })();
    const others = (async () => {
      // A retry's meta as a Python worker stores it: the traceback of the retry, not ready yet.
      const retrying = crypto.randomUUID();
      const traceback = 'Traceback (most recent call last):\n  File "t.py", line 1\nRetry: later\n';
      const redis = await rawRedis();
      await redis.set(
        `${prefix}celery-task-meta-${retrying}`,
        JSON.stringify({
          status: "RETRY",
          result: { exc_type: "Retry", exc_message: ["later"], exc_module: "celery.exceptions" },
          traceback,
          children: [],
          date_done: null,
          task_id: retrying,
        }),
      );
      await redis.quit();
      const [
        missing,
        missingTraceback,
        retryTraceback,
        badArgs,
        active,
        rate,
        unknown,
        report,
        beat,
        nobody,
        bogus,
        pinged,
        absent,
      ] = await Promise.all([
        cli("result", crypto.randomUUID(), "-t", "0.5"),
        // As Celery 5.2.6's `result --traceback`: no wait, the traceback stored now, exit 0.
        cli("result", crypto.randomUUID(), "--traceback", "-t", "20"),
        cli("result", retrying, "--traceback", "-t", "20"),
        cli("call", "tasks.add", "--args", "{not json"),
        cli("inspect", "active", "--json", ...toNode),
        cli("control", "rate_limit", "tasks.add", "10/s", ...toNode),
        // An error reply exits 1.
        cli("control", "rate_limit", "no.such", "1/s", ...toNode),
        cli("report", ...toNode),
        // As `celery control heartbeat`: the worker's reply (None), not "sent" with no one there.
        cli("control", "heartbeat", ...toNode),
        cli("inspect", "ping", "-t", "0.5", "-d", "nobody@nowhere"),
        cli("inspect", "bogus"),
        // As `celery status -d`: only the named nodes (it was refused, exit 2).
        cli("status", ...toNode),
        cli("status", "-t", "0.5", "-d", "nobody@nowhere"),
      ]);
      expect(missing, 3);
      expect(missingTraceback, 0, [/^\n$/], [/^$/]);
      expect(retryTraceback, 0, [new RegExp(`^${RegExp.escape(traceback)}\n$`)], [/^$/]);
      expect(badArgs, 2);
      // The add and the fail may be running meanwhile: the reply's shape, by node.
      const listed = json(active) as Record<string, unknown>;
      assert.deepEqual(Object.keys(listed), [node], show(active));
      assert.ok(Array.isArray(listed[node]), show(active));
      expect(rate, 0, [/new rate limit set successfully/]);
      expect(unknown, 1, [/ERROR\n\s+error: unknown task/]);
      expect(report, 0, [/software -> celeriac:/]);
      expect(beat, 0, [new RegExp(`->  ${node}: OK\\n    null\\n`)]);
      expect(nobody, 69, [], [/No nodes replied/]);
      expect(bogus, 2);
      expect(pinged, 0, [new RegExp(`^->  ${node}: OK\\n\\n1 node online\\.\\n$`)]);
      expect(absent, 69, [/^$/], [/No nodes replied/]);
    })();
    const [id] = await Promise.all([add, fail, others]);
    const online = await status;
    // Celery 5.2's `status --json` shape: the ping replies by node.
    assert.deepEqual(json(online), { [node]: { ok: "pong" } }, show(online));

    await dump.waitFor(
      new RegExp(`${node} \\[.*\\] task succeeded: tasks\\.add\\(${id}\\) .*result=5`),
      20_000,
    );
    assert.match(dump.output, new RegExp(`task received: tasks\\.add\\(${id}\\) args=\\(2, 3\\)`));
    assert.match(dump.output, new RegExp(`${node} \\[.*\\] heartbeat: active=`));
  } finally {
    await status; // a failure above must not leave it running
    await dump.stop("SIGINT");
  }
}

async function tmux(...args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) };
}

/** The live events view under tmux shows the worker `node` and a task; q quits. */
async function liveView(node: string): Promise<void> {
  const session = `celeriac-events-${crypto.randomUUID().slice(0, 8)}`;
  const command = [Deno.execPath(), "run", "-A", "worker.ts", "events", ...APP]
    .map((a) => `'${a}'`).join(" ");
  await tmux("new-session", "-d", "-s", session, "-x", "180", "-y", "40", "-c", ROOT, command);
  try {
    const screen = async (re: RegExp) => {
      let text = "";
      for (let i = 0; i < 150; i++) {
        text = (await tmux("capture-pane", "-p", "-t", session)).out;
        if (re.test(text)) return text;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`${re} not on screen:\n${text}`);
    };
    await screen(new RegExp(`${node.replace(".", "\\.")}\\s+online`));
    const sent = await cli("call", "tasks.add", "--args", "[20, 22]", "--queue", QUEUE);
    expect(sent, 0);
    const id = sent.out.trim();
    const text = await screen(new RegExp(`SUCCESS\\s+tasks\\.add\\s+${id}`));
    assert.match(text, /Celeriac events — \d+\/\d+ worker\(s\) online/);
    assert.match(text, /Tasks: .*SUCCESS \d+/);
    await tmux("send-keys", "-t", session, "q");
    for (let i = 0; i < 100 && (await tmux("has-session", "-t", session)).code === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.notEqual((await tmux("has-session", "-t", session)).code, 0, "q ends the view");
  } finally {
    await tmux("kill-session", "-t", session);
  }
}

Deno.test({
  name: "cli: the monitoring commands and the live events view, against one worker",
  ignore: WITHOUT_REDIS,
}, async (t) => {
  // One worker for both (its start and stop cost more than the view): the test stops it, so its
  // sanitizers still see it closed; the steps' own are off, the worker's output read on.
  const worker = await celeriacWorker([...APP, "-Q", QUEUE, "-c", "1", "-n", "clitest@%h", "-E"]);
  const node = worker.output.match(/(clitest@\S+) ready/)![1];
  const step = (name: string, fn: () => Promise<void>) =>
    t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
  try {
    await step(
      "call, result, inspect, control, status, report and events --dump",
      () => commands(node),
    );
    await step(
      "the live events view under tmux shows workers and tasks; q quits",
      () => liveView(node),
    );
  } finally {
    await worker.stop();
  }
});

Deno.test({ name: "cli: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
