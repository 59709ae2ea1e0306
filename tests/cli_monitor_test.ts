/**
 * The monitoring command line against a Celeriac worker on Redis: `call`,
 * `result`, `inspect`, `control`, `status`, `report`, `events --dump`,
 * their exit codes (69 when no worker replies), and the live `events` view
 * driven in tmux (capture-pane shows the worker and the task; `q` quits).
 */

import assert from "node:assert/strict";
import { celeriacWorker, Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("cli-mon");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const QUEUE = `cli-${crypto.randomUUID().slice(0, 8)}`;
const APP = ["--app", "./tests/interop/tasks.ts", "-b", BROKER, "--backend", BROKER];
const ROOT = new URL("../", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args, ...APP],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

Deno.test({
  name: "cli: call, result, inspect, control, status, report and events --dump",
  ignore: WITHOUT_REDIS,
}, async () => {
  const worker = await celeriacWorker([...APP, "-Q", QUEUE, "-c", "1", "-n", "clitest@%h", "-E"]);
  const node = worker.output.match(/(clitest@\S+) ready/)![1];
  const dump = Proc.start("events --dump", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "events",
    "--dump",
    ...APP,
  ]);
  try {
    await dump.waitFor(/heartbeat: active=/, 30_000); // subscribed
    const sent = await cli("call", "tasks.add", "--args", "[2, 3]", "--queue", QUEUE);
    assert.equal(sent.code, 0, sent.err);
    const id = sent.out.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const got = await cli("result", id, "-t", "20");
    assert.equal(got.code, 0, got.err);
    assert.equal(got.out.trim(), "5");

    const bad = await cli("call", "tasks.fail", "--args", '["boom"]', "--queue", QUEUE);
    const failed = await cli("result", bad.out.trim(), "--traceback", "-t", "20");
    assert.equal(failed.code, 1);
    assert.match(failed.err, /FAILURE: ValueError: boom/);
    assert.match(failed.err, /Error|boom\n/);
    assert.equal((await cli("result", crypto.randomUUID(), "-t", "0.5")).code, 2);
    assert.equal((await cli("call", "tasks.add", "--args", "{not json")).code, 1);

    const status = await cli("status", "--json", "-t", "3");
    assert.equal(status.code, 0, status.err);
    assert.deepEqual(JSON.parse(status.out), [node]);
    const active = await cli("inspect", "active", "--json", "-t", "3", "-d", node);
    assert.deepEqual(JSON.parse(active.out), { [node]: [] });
    const stats = await cli("inspect", "stats", "-t", "3", "-d", node);
    assert.match(stats.out, new RegExp(`->  ${node}: OK\\n`));
    assert.match(stats.out, /"tasks\.add": 1/);
    const rate = await cli("control", "rate_limit", "tasks.add", "10/s", "-t", "3", "-d", node);
    assert.equal(rate.code, 0);
    assert.match(rate.out, /new rate limit set successfully/);
    const unknown = await cli("control", "rate_limit", "no.such", "1/s", "-t", "3", "-d", node);
    assert.equal(unknown.code, 1, "an error reply exits 1");
    assert.match(unknown.out, /ERROR\n\s+error: unknown task/);
    const report = await cli("report", "-t", "3", "-d", node);
    assert.match(report.out, /software -> celeriac:/);
    const nobody = await cli("inspect", "ping", "-t", "0.5", "-d", "nobody@nowhere");
    assert.equal(nobody.code, 69);
    assert.match(nobody.err, /No nodes replied/);
    assert.equal((await cli("inspect", "bogus")).code, 2);

    await dump.waitFor(new RegExp(`${node} \\[.*\\] task succeeded: ${id} .*result=5`), 20_000);
    assert.match(dump.output, new RegExp(`task received: tasks\\.add\\(${id}\\) args=\\(2, 3\\)`));
    assert.match(dump.output, new RegExp(`${node} \\[.*\\] heartbeat: active=`));
  } finally {
    await dump.stop("SIGINT");
    await worker.stop();
  }
});

async function tmux(...args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) };
}

Deno.test({
  name: "cli: the live events view under tmux shows workers and tasks; q quits",
  ignore: WITHOUT_REDIS,
}, async () => {
  const worker = await celeriacWorker([...APP, "-Q", QUEUE, "-c", "1", "-n", "clitmux@%h", "-E"]);
  const node = worker.output.match(/(clitmux@\S+) ready/)![1];
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
    await worker.stop();
  }
});

Deno.test({ name: "cli: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
