/**
 * Operator commands of the command line against a KV file broker shared
 * with the test: `purge` asks before deleting unless `-f`; `parked` lists.
 */

import assert from "node:assert/strict";
import type { Celery } from "../mod.ts";
import { withKvBroker } from "./helpers/kv_temp.ts";

const ROOT = new URL("../", import.meta.url);

async function cli(args: string[], stdin = ""): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", new URL("deno.json", ROOT).pathname, "worker.ts", ...args],
    cwd: ROOT.pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const res = await child.output();
  const dec = new TextDecoder();
  return { code: res.code, out: dec.decode(res.stdout) + dec.decode(res.stderr) };
}

const withBroker = (fn: (url: string, app: Celery) => Promise<void>) =>
  withKvBroker("celeriac-cli-", fn);

const APP = ["--app", "./tests/apps/worker_app.ts"];

Deno.test("cli purge: asks first, and deletes nothing unless the answer is y or yes", async () => {
  await withBroker(async (url, app) => {
    for (let i = 0; i < 3; i++) await app.sendTask("t.add", [i, i], { queue: "a" });
    await app.sendTask("t.add", [9, 9], { queue: "b" });
    const no = await cli(["purge", ...APP, "-b", url, "-Q", "a,b"], "no\n");
    assert.equal(no.code, 1);
    assert.match(no.out, /remove all tasks from queues: a, b/);
    assert.match(no.out, /Purge cancelled/);
    assert.equal(await app.queueDepth("a"), 3);
    assert.match(no.out, /Are you sure you want to delete all tasks\? \[y\/N\]: /);
    const yes = await cli(["purge", ...APP, "-b", url, "-Q", "a,b"], "yes\n");
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /Purged 4 messages from 2 queues \(a, b\)/);
    assert.equal(await app.queueDepth("a"), 0);
    assert.equal(await app.queueDepth("b"), 0);
    // Celery 5.2's purge asks with click.confirm, which takes y: here "y" cancelled.
    await app.sendTask("t.add", [1, 1], { queue: "a" });
    const y = await cli(["purge", ...APP, "-b", url, "-Q", "a"], "Y\n");
    assert.equal(y.code, 0, y.out);
    assert.match(y.out, /Purged 1 message from 1 queue \(a\)/);
  });
});

Deno.test("cli purge -f: deletes the default queue without asking", async () => {
  await withBroker(async (url, app) => {
    await app.sendTask("t.add", [1, 2]);
    await app.sendTask("t.add", [1, 2], { queue: "other" });
    const res = await cli(["purge", ...APP, "-b", url, "-f"]);
    assert.equal(res.code, 0, res.out);
    assert.doesNotMatch(res.out, /Are you sure/);
    assert.match(res.out, /Purged 1 message from 1 queue \(celery\)/);
    assert.equal(await app.queueDepth(), 0);
    assert.equal(await app.queueDepth("other"), 1, "other queues are left alone");
  });
});

Deno.test("cli purge -X/--exclude-queues: the queues of -Q but those, as celery purge -X", async () => {
  await withBroker(async (url, app) => {
    for (const q of ["a", "b", "c"]) await app.sendTask("t.add", [1, 2], { queue: q });
    await app.sendTask("t.add", [1, 2]);
    const some = await cli(["purge", ...APP, "-b", url, "-f", "-Q", "a,b,c", "-X", "b"]);
    assert.equal(some.code, 0, some.out);
    assert.match(some.out, /Purged 2 messages from 2 queues \(a, c\)/);
    assert.deepEqual(
      [await app.queueDepth("a"), await app.queueDepth("b"), await app.queueDepth("c")],
      [0, 1, 0],
    );
    // Every queue excluded: Celery's words, nothing asked, nothing deleted.
    const none = await cli(["purge", ...APP, "-b", url, "--exclude-queues", "celery"]);
    assert.equal(none.code, 0, none.out);
    assert.match(none.out, /No messages purged from 0 queues\./);
    assert.doesNotMatch(none.out, /Are you sure/);
    assert.equal(await app.queueDepth(), 1);
    // -X "$KEEP" with KEEP unset would purge the queue meant to be kept.
    const empty = await cli(["purge", ...APP, "-b", url, "-f", "-Q", "b", "-X", ""]);
    assert.equal(empty.code, 2, empty.out);
    assert.match(empty.out, /-X, --exclude-queues names no queue/);
    assert.equal(await app.queueDepth("b"), 1);
  });
});

Deno.test("cli purge and parked without --app: the broker alone, as celery -b URL purge", async () => {
  await withBroker(async (url, app) => {
    await app.sendTask("t.add", [1, 2], { queue: "q1" });
    const purged = await cli(["purge", "-b", url, "-f", "-Q", "q1"]);
    assert.equal(purged.code, 0, purged.out);
    assert.match(purged.out, /Purged 1 message from 1 queue \(q1\)/);
    assert.equal(await app.queueDepth("q1"), 0);
    const parked = await cli(["parked", "-b", url]);
    assert.equal(parked.code, 0, parked.out);
    assert.match(parked.out, /0 parked message\(s\)/);
  });
});

Deno.test("cli control: a missing or malformed argument is refused before anything is sent", async () => {
  await withBroker(async (url) => {
    // `rate_limit TASK` without a rate would remove the task's limit on every worker.
    const cases: [string[], RegExp][] = [
      [["control", "rate_limit", "t.add"], /rate_limit: takes TASK RATE .*; got t\.add/],
      [["control", "time_limit", "t.add"], /time_limit: takes TASK SOFT \[HARD\]/],
      [["control", "time_limit", "t.add", "5", "x"], /"x" is not a number/],
      [["control", "pool_grow", "abc"], /"abc" is not a whole number above 0/],
      [["control", "revoke"], /revoke: takes ID \[ID \.\.\.\]; got none/],
      [["control", "terminate", "SIGTERM"], /terminate: takes SIGNAL ID/],
      // Celery's worker refuses them (signum()) and the task runs on: refused before sending.
      [["control", "terminate", "SIGFOO", "id1"], /terminate: "SIGFOO" is no signal/],
      [["control", "terminate", "sigterm", "id1"], /terminate: "sigterm" is no signal/],
      [["control", "heartbeat", "now"], /heartbeat: takes no arguments/],
      [["inspect", "query_task"], /query_task: takes ID/],
    ];
    for (const [args, message] of cases) {
      const res = await cli([...args, "-b", url, "-t", "0.2"]);
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.out}`);
      assert.match(res.out, message);
    }
    // Well-formed: sent, and no worker is there to answer.
    const sent = await cli(["control", "rate_limit", "t.add", "0", "-b", url, "-t", "0.2"]);
    assert.equal(sent.code, 69, sent.out);
  });
});

Deno.test("cli inspect/control -d naming no node: refused, not sent to every worker", async () => {
  await withBroker(async (url) => {
    // `-d "$NODE"` with NODE unset: without -d, shutdown would stop every worker on the broker.
    for (
      const [args, d] of [
        [["control", "shutdown"], ""],
        [["control", "enable_events"], ","],
        [["inspect", "ping"], " , "],
        [["control", "revoke", "id1"], ""],
      ] as [string[], string][]
    ) {
      const res = await cli([...args, "-d", d, "-b", url, "-t", "0.2"]);
      assert.equal(res.code, 2, `${args.join(" ")} -d "${d}": ${res.out}`);
      assert.match(
        res.out,
        /-d ".*" names no node: .*drop -d to reach every worker; nothing was sent/,
      );
      assert.doesNotMatch(res.out, /sent\.|No nodes replied|stored in the broker/);
    }
    // A blank among names is dropped: the named node is asked (and is not there).
    const named = await cli(["inspect", "ping", "-d", "nobody@h,", "-b", url, "-t", "0.2"]);
    assert.equal(named.code, 69, named.out);
  });
});

Deno.test("cli control revoke: remembered in the broker, so a worker that starts later skips it", async () => {
  await withBroker(async (url, app) => {
    const queued = await app.sendTask("t.add", [1, 2]);
    const running = await app.sendTask("t.add", [3, 4]);
    // No worker is up: nobody answers, yet the revoke must not be lost.
    const revoke = await cli(["control", "revoke", queued.id, "-b", url, "-t", "0.2"]);
    assert.equal(revoke.code, 69, revoke.out);
    assert.match(revoke.out, /No nodes replied/);
    assert.match(revoke.out, /The revoke is stored in the broker for 3 hours/);
    const terminate = await cli(
      ["control", "terminate", "SIGKILL", running.id, "-b", url, "-t", "0.2"],
    );
    assert.equal(terminate.code, 69, terminate.out);
    // Addressed to a node (-d) that does not answer: not stored, and said so.
    const elsewhere = await cli(
      ["control", "revoke", "other-id", "-d", "w1@nowhere", "-b", url, "-t", "0.2"],
    );
    assert.equal(elsewhere.code, 69, elsewhere.out);
    assert.match(elsewhere.out, /No node of -d w1@nowhere answered: the revoke reached no worker/);
    const remembered = (await (await app.broker()).listRevoked()).map((e) => e.id);
    assert.deepEqual(remembered.sort(), [queued.id, running.id].sort());
  });
});

Deno.test("cli parked: a message without task name or id says so instead of -[-]", async () => {
  await withBroker(async (url, app) => {
    const broker = await app.broker();
    await broker.publish({
      body: new TextEncoder().encode("\u0000not json"),
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: {},
      properties: {},
    }, { routingKey: "raw" });
    const [delivery] = await broker.take(["raw"], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.ok(delivery, "the raw message was taken");
    await broker.reject([{ delivery, reason: "undecodable body" }]);
    const res = await cli(["parked", "-b", url]);
    assert.equal(res.code, 0, res.out);
    assert.doesNotMatch(res.out, /-\[-\]/);
    assert.match(res.out, / {2}raw {2}\(no task name or id\) {2}undecodable body/);
    assert.match(res.out, /1 parked message\(s\)/);
  });
});
