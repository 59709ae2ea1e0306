/**
 * Each command refuses the options it does not read (one parse table serves
 * every command): `purge --queue emails -f` purged the default queue, and
 * `call -Q emails` sent to it, without a word. Celery (click) refuses them:
 * "No such option". Runs the real command line against a KV file broker.
 */

import assert from "node:assert/strict";
import type { Celery } from "../mod.ts";
import { withKvBroker } from "./helpers/kv_temp.ts";
import { COMMAND_OPTIONS, workerOptions } from "../src/cli/command_flags.ts";
import { OPTIONS } from "../src/cli/options.ts";
import { workerEnv } from "./helpers/worker_env.ts";

const ROOT = new URL("../", import.meta.url);
const APP = ["--app", "./tests/apps/worker_app.ts"];

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", new URL("deno.json", ROOT).pathname, "worker.ts", ...args],
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: res.code, err: new TextDecoder().decode(res.stderr) };
}

const withBroker = (fn: (url: string, app: Celery) => Promise<void>) =>
  withKvBroker("celeriac-flags-", fn);

Deno.test("cli flags: purge --queue X -f is refused and deletes nothing (purge reads -Q)", async () => {
  await withBroker(async (url, app) => {
    await app.sendTask("t.add", [1, 1]);
    await app.sendTask("t.add", [2, 2], { queue: "emails" });
    const r = await cli(["purge", ...APP, "-b", url, "--queue", "emails", "-f"]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /^error: purge has no --queue \(did you mean -Q\/--queues\?\)/);
    assert.equal(await app.queueDepth("celery"), 1);
    assert.equal(await app.queueDepth("emails"), 1);
  });
});

Deno.test("cli flags: call -Q X is refused and sends nothing (call reads --queue)", async () => {
  await withBroker(async (url, app) => {
    const r = await cli(["call", "t.add", ...APP, "-b", url, "-Q", "emails"]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /^error: call has no -Q \(did you mean --queue\?\)/);
    assert.equal(await app.queueDepth("celery"), 0);
    assert.equal(await app.queueDepth("emails"), 0);
  });
});

Deno.test("cli flags: the worker refuses other commands' flags, and -B / -D ones without them", async () => {
  const cases: [string[], RegExp][] = [
    [["--json"], /^error: the worker has no --json: -j\/--json is for call, result, /],
    [["--requeue"], /^error: the worker has no --requeue: --requeue is for parked/],
    [["--port", "5556"], /^error: the worker reads --port only with -D /],
    [["--lease-time", "30"], /^error: the worker reads --lease-time only with -B /],
    [["-f"], /^error: the worker has no -f: -f\/--force is purge's; .*write --logfile PATH/],
    // Celery's `-f w.log`: the path is not taken for a command name.
    [["-f", "w.log"], /^error: the worker has no -f: .*--logfile PATH/],
  ];
  for (const [args, message] of cases) {
    const r = await cli([...APP, "-b", "kv://", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, args.join(" "));
  }
});

Deno.test("cli flags: Celery's worker flags get what to write instead, or are taken as no-ops", async () => {
  const cases: [string[], RegExp][] = [
    [["-O", "fair"], /^error: unknown option -O: Celery's -O fair is --prefetch-multiplier 1 here/],
    [
      ["--pidfile", "w.pid"],
      /^error: unknown option --pidfile: .*run it under a supervisor \(systemd/,
    ],
    [["--detach"], /^error: unknown option --detach: .*supervisor/],
  ];
  for (const [args, message] of cases) {
    const r = await cli([...APP, "-b", "kv://", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, args.join(" "));
  }
  // Taken, with an INFO line; the worker then stops at the unreachable broker (--fail-fast).
  const args = [
    "run",
    "-A",
    "worker.ts",
    ...APP,
    "-P",
    "inline",
    "-b",
    "redis://127.0.0.1:1/0",
    "--fail-fast",
    "--without-gossip",
    "--without-mingle",
  ];
  const res = await new Deno.Command(Deno.execPath(), {
    args,
    env: workerEnv(args),
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
  assert.doesNotMatch(out, /unknown option/);
  assert.match(out, /--without-gossip changes nothing: /);
  assert.match(out, /--without-mingle changes nothing: /);
});

Deno.test("cli flags: parked --help lists --requeue and --limit, which it reads", async () => {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", "parked", "--help"],
    cwd: ROOT.pathname,
    stdout: "piped",
  }).output();
  const out = new TextDecoder().decode(res.stdout);
  assert.match(out, /^ {6}--requeue /m);
  assert.match(out, /^ {6}--limit N /m);
});

Deno.test("cli flags: every option is read by some command", () => {
  const read = new Set([
    ...Object.values(COMMAND_OPTIONS).flat(),
    ...workerOptions({ beat: true, dashboard: true }),
  ]);
  for (const name of Object.keys(OPTIONS)) assert.ok(read.has(name), `--${name} is read by none`);
});
