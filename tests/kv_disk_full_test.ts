/**
 * A KV file on a full disk (review 23, finding 2): Deno KV throws a plain
 * `TypeError("database or disk is full")`, which the worker took for a
 * refusal of that one result; it then failed to store the FAILURE in its
 * place too and settled the message without any result (`get()` read
 * PENDING until it timed out), and `delay()` rejected with that bare
 * TypeError. Now it is an outage: the store is retried until space is
 * freed, and a send fails with a coded error naming the file.
 *
 * The file lives on a 4 MiB tmpfs of its own, so mounting needs root; the
 * tests are skipped otherwise.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { BrokerConnectionError, Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

const NOT_ROOT = Deno.uid() !== 0;

async function run(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Write `path` until the file system has no space left. */
async function fill(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  try {
    for (const size of [64 * 1024, 4096, 512]) {
      const chunk = new Uint8Array(size);
      try {
        for (;;) await file.write(chunk);
      } catch (err) {
        if (!/os error 28|no space/i.test(String(err))) throw err;
      }
    }
  } finally {
    file.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A path no file is at yet: the test writes it to let a task go on. */
async function gatePath(): Promise<string> {
  const gate = await Deno.makeTempFile({ prefix: "celeriac-kv-full-gate-" });
  await Deno.remove(gate);
  return gate;
}

/**
 * A wait's deadline: a test that fails while the disk is full must reach its
 * `finally` (space freed) well before Deno's own expiry sweep panics (after
 * about a minute of a full disk), or the process dies with the tmpfs mounted.
 */
const WAIT_MS = 30_000;

/** Until a file is at `path` (at most {@link WAIT_MS}). */
async function untilExists(path: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await Deno.stat(path).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error(`no file at ${path} after ${WAIT_MS} ms`);
    await sleep(50);
  }
}

/** Until a captured record matches `re` (at most {@link WAIT_MS}); the lines so far. */
async function untilLogged(records: LogRecord[], re: RegExp): Promise<string[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const lines = records.map(logLine);
    if (lines.some((l) => re.test(l))) return lines;
    if (Date.now() > deadline) {
      throw new Error(`no log line matched ${re} after ${WAIT_MS} ms:\n${lines.join("\n")}`);
    }
    await sleep(50);
  }
}

/** A directory on a small tmpfs of its own, unmounted after `fn`. */
async function withSmallDisk(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-full-" });
  await run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir);
  try {
    await fn(dir);
  } finally {
    await run("umount", dir);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "kv disk full: a result store is retried until space is freed, then stored",
  ignore: NOT_ROOT,
  fn: () =>
    withSmallDisk(async (dir) => {
      const file = `${dir}/celeriac.sqlite`;
      const gate = await gatePath();
      const app = new Celery({ broker: `kv://${file}`, backend: `kv://${file}` });
      const big = app.task("t.kvfull.big", async (n: number) => {
        await Deno.writeTextFile(`${gate}.started`, "");
        await untilExists(gate);
        return "x".repeat(n);
      });
      const records = await captureLogs("info");
      const worker = new Worker({ app, concurrency: 1, pool: "inline" });
      try {
        await worker.start();
        // A result of 300 KB: more than the write-ahead log has room for once the disk is full.
        const res = await big.delay(300_000);
        await untilExists(`${gate}.started`);
        await fill(`${dir}/filler`);
        await Deno.writeTextFile(gate, "go");
        // The store fails while the disk is full, and is retried (before: a FAILURE was tried
        // in its place, which failed too, and the message was settled without a result).
        const retried = /store 1 result.*disk is full/;
        const dropped = /storing FAILURE instead|without a stored result/;
        const lines = await untilLogged(records, new RegExp(`${retried.source}|${dropped.source}`));
        assert.ok(!lines.some((l) => dropped.test(l)), lines.join("\n"));
        assert.equal(await res.state(), "PENDING");
        await Deno.remove(`${dir}/filler`);
        assert.equal((await res.get({ timeout: 30_000 })).length, 300_000);
        assert.ok(!records.map(logLine).some((l) => dropped.test(l)));
      } finally {
        // Space back and the task let go, or the stop waits for it (and Deno's expiry sweep
        // panics when the disk stays full for about a minute).
        await Deno.remove(`${dir}/filler`).catch(() => {});
        await Deno.writeTextFile(gate, "go");
        await worker.stop();
        for (const f of [gate, `${gate}.started`]) await Deno.remove(f).catch(() => {});
        await app.close();
        await reset();
      }
    }),
});

Deno.test({
  name: "kv disk full: a send fails with a coded error naming the file",
  ignore: NOT_ROOT,
  fn: () =>
    withSmallDisk(async (dir) => {
      const file = `${dir}/celeriac.sqlite`;
      const app = new Celery({ broker: `kv://${file}`, backend: `kv://${file}` });
      const big = app.task("t.kvfull.big", (n: number) => n);
      try {
        await big.delay(1);
        await fill(`${dir}/filler`);
        await assert.rejects(
          big.applyAsync([1], { headers: { pad: "p".repeat(50_000) } }),
          (err) => {
            assert.ok(err instanceof BrokerConnectionError, String(err));
            assert.equal(err.code, "BROKER_CONNECTION");
            assert.equal(err.transient, true);
            assert.ok(err.message.includes(file), err.message);
            assert.match(err.message, /database or disk is full.*Free disk space/);
            return true;
          },
        );
      } finally {
        await Deno.remove(`${dir}/filler`).catch(() => {});
        await app.close();
      }
    }),
});

Deno.test({
  name: "kv disk full: a late acknowledgement is retried until space is freed; the task runs once",
  ignore: NOT_ROOT,
  fn: () =>
    withSmallDisk(async (dir) => {
      const file = `${dir}/celeriac.sqlite`;
      const gate = await gatePath();
      const app = new Celery({ broker: `kv://${file}?visibility_timeout=4` });
      let runs = 0;
      const slow = app.task("t.kvfull.ack", { acksLate: true, ignoreResult: true }, async () => {
        runs++;
        await untilExists(gate);
        return 1;
      });
      const records = await captureLogs("info");
      const worker = new Worker({ app, concurrency: 1, pool: "inline" });
      try {
        await worker.start();
        await slow.delay();
        while (runs === 0) await sleep(50);
        await fill(`${dir}/filler`);
        await Deno.writeTextFile(gate, "go");
        // Before: the acknowledgement failed at once ("Settling failed"), the park too ("Cannot
        // park"), and the message came back after the visibility timeout: a second run.
        const failed = /Settling failed|Cannot park/;
        const retried =
          /acknowledge 1 message\(s\): cannot write \(Cannot write kv:\/\/.*disk is full/;
        await untilLogged(records, new RegExp(`${failed.source}|${retried.source}`));
        await sleep(1500);
        await Deno.remove(`${dir}/filler`);
        await untilLogged(records, /reachable again|Settling failed|Cannot park/);
        // Past the visibility timeout and a restore sweep: an unacknowledged message is back.
        await sleep(6000);
        const lines = records.map(logLine);
        assert.ok(!lines.some((l) => failed.test(l)), lines.join("\n"));
        assert.ok(lines.some((l) => retried.test(l)), lines.join("\n"));
        assert.equal(runs, 1, lines.join("\n"));
      } finally {
        await Deno.remove(`${dir}/filler`).catch(() => {});
        await Deno.writeTextFile(gate, "go");
        await worker.stop();
        await Deno.remove(gate).catch(() => {});
        await app.close();
        await reset();
      }
    }),
});
