/**
 * A KV file whose SQLite write lock another process holds (here a python3
 * sqlite3 connection in `BEGIN EXCLUSIVE`): opening it says so at WARN and a
 * stop signal ends the wait, where Deno KV's first read waited silently for
 * as long as the lock was held.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { openKvBroker } from "../src/broker/kv.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { holdWriteLock } from "./helpers/kv_lock.ts";

/**
 * Run `fn` on a KV file (made by a first open) whose write lock a python3
 * process holds for `seconds`, from the moment it says so; the logs from
 * then on are captured.
 */
async function withLockedFile(
  seconds: number,
  fn: (path: string, records: LogRecord[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/q.sqlite`;
  await (await openKvBroker(`kv://${path}`)).close();
  const holder = await holdWriteLock(path, seconds);
  const records = await captureLogs("info");
  try {
    await fn(path, records);
  } finally {
    await reset();
    await holder.status;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kv: opening a file another process holds the write lock of warns and honours the stop signal", async () => {
  // Holds the lock a while, then lets go: an open that ignored the signal would then succeed.
  await withLockedFile(4, async (path, records) => {
    const stop = new AbortController();
    const reason = new Error("stopped while the file was locked");
    const warned = () => records.map(logLine).some((l) => l.includes("holds the write lock"));
    let settled = false;
    const opening = openKvBroker(`kv://${path}`, { signal: stop.signal });
    opening.then(() => settled = true, () => settled = true);
    while (!warned() && !settled) await new Promise((r) => setTimeout(r, 20));
    stop.abort(reason);
    await assert.rejects(opening.then((b) => b.close()), (err) => err === reason);
    const line = records.map(logLine).find((l) => l.includes("holds the write lock"))!;
    assert.match(line, /^warning Another process holds the write lock of .*q\.sqlite/);
  });
});

Deno.test("kv: an open waits for the write lock, then opens the file", async () => {
  await withLockedFile(1, async (path, records) => {
    const broker = await openKvBroker(`kv://${path}`);
    await broker.close();
    const lines = records.map(logLine);
    assert.ok(
      lines.some((l) => l.startsWith("warning Another process holds the write lock")),
      lines.join("\n"),
    );
    assert.ok(lines.some((l) => l.includes("is free again")), lines.join("\n"));
  });
});
