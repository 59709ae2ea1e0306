/**
 * KV loops that read again after a failed read (review 43, findings 2 and
 * 3). The result watch of the KV backend restarted at once after a failed
 * read, so while reads kept failing (an I/O error, a locked or full disk)
 * it spun and logged a warning per turn; the reader of remote-control
 * replies stopped for good at its first failed read, so a reply written
 * after it reached its call only at the call's deadline. Failures are
 * injected by wrapping the process's shared Deno KV handle.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { openKvBackend } from "../src/backend/kv.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import { openSharedKv } from "../src/broker/kv_store.ts";
import { encodeControlReply, PIDBOX_REPLY_EXCHANGE } from "../src/protocol/control.ts";
import type { Message } from "../src/protocol/message.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";

/** The captured lines that start with `start`. */
function linesOf(records: LogRecord[], start: string): string[] {
  return records.map(logLine).filter((l) => l.startsWith(start));
}

Deno.test("kv backend: a result watch whose reads keep failing waits between reads, logs once, recovers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-read-retry-" });
  const path = `${dir}/results.sqlite`;
  const url = `kv://${path}`;
  const records = await captureLogs("info");
  const backend = await openKvBackend(url);
  const other = await openKvBackend(url);
  const shared = await openSharedKv(path, url);
  const getMany = shared.kv.getMany;
  const taskId = crypto.randomUUID();
  let failing = true;
  let reads = 0;
  let failedReads = 0;
  shared.kv.getMany = function (this: Deno.Kv, ...args: Parameters<Deno.Kv["getMany"]>) {
    if (args[0].some((k) => k.includes(taskId))) {
      reads++;
      if (failing) {
        failedReads++;
        // Rejected from a later turn of the event loop, as a real read fails.
        return new Promise((_, reject) => setTimeout(() => reject(new Error("disk I/O error")), 0));
      }
    }
    return getMany.apply(this, args);
  } as Deno.Kv["getMany"];
  try {
    const waiting = backend.waitFor(taskId);
    waiting.catch(() => {});
    await until("a failed read", () => reads > 0);
    const first = reads;
    await new Promise((r) => setTimeout(r, 1000));
    // A generous lower bound on the wait between reads: 10 in a second is
    // 100 ms apart on average; the loop that restarted at once read
    // thousands of times.
    assert.ok(reads - first <= 10, `${reads - first} failed reads in 1 s: the watch spins`);
    assert.ok(reads - first >= 1, "the watch reads again while reads fail");
    assert.deepEqual(
      linesOf(records, "warning "),
      ["warning Cannot read results, trying again: Error: disk I/O error"],
      "one warning for the whole streak",
    );
    failing = false;
    const meta = encodeResultMeta({ taskId, status: "SUCCESS", result: 7, dateDone: new Date() });
    // Stored by another backend: only the watch of `backend` settles its wait.
    await other.store([{ taskId, status: "SUCCESS", meta }]);
    assert.equal((await waiting).result, 7);
    await until("the recovery logged", () => linesOf(records, "info Reading results").length > 0);
    assert.deepEqual(linesOf(records, "info Reading results"), [
      `info Reading results again after ${failedReads} failed read(s)`,
    ]);
    assert.equal(linesOf(records, "warning ").length, 1);
  } finally {
    shared.kv.getMany = getMany;
    await shared.release();
    await other.close();
    await backend.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv replies: failed reads are read again; a reply written after them reaches the call", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-read-retry-" });
  const path = `${dir}/q.sqlite`;
  const url = `kv://${path}`;
  const records = await captureLogs("info");
  const broker = await openKvBroker(url);
  const shared = await openSharedKv(path, url);
  const list = shared.kv.list;
  const routingKey = `oid.${crypto.randomUUID()}`;
  const failures = 3;
  let failed = 0;
  shared.kv.list = function (this: Deno.Kv, ...args: Parameters<Deno.Kv["list"]>) {
    const selector = args[0] as { prefix?: Deno.KvKey };
    if (selector.prefix?.includes(routingKey) && failed < failures) {
      failed++;
      return (async function* () {
        yield* [];
        throw new TypeError("database is locked");
      })() as unknown as Deno.KvListIterator<unknown>;
    }
    return list.apply(this, args);
  } as Deno.Kv["list"];
  const stop = new AbortController();
  try {
    const got: Message[] = [];
    await broker.subscribe(PIDBOX_REPLY_EXCHANGE, (m) => got.push(m), {
      signal: stop.signal,
      queue: `${routingKey}.${PIDBOX_REPLY_EXCHANGE}`,
      bindingKey: routingKey,
    });
    await until(`${failures} failed reads`, () => failed === failures);
    const reply = encodeControlReply("w1@h", { ok: "pong" }, { ticket: "t1", clock: 1 });
    await broker.publish(reply, { exchange: PIDBOX_REPLY_EXCHANGE, routingKey });
    await until("the reply handed over", () => got.length > 0);
    assert.equal(got.length, 1);
    assert.equal(got[0].headers.ticket, "t1");
    assert.deepEqual(linesOf(records, "error "), [
      `error Cannot read replies on ${routingKey}, trying again: TypeError: database is locked`,
    ]);
    assert.deepEqual(linesOf(records, "info Reading replies"), [
      `info Reading replies on ${routingKey} again after ${failures} failed read(s)`,
    ]);
  } finally {
    stop.abort();
    shared.kv.list = list;
    await shared.release();
    await broker.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
