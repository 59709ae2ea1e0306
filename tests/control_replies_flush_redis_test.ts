/**
 * Remote-control replies on Redis that reach the server before the
 * deadline but not this process's socket are kept: the reply reader's
 * BRPOP ended (its 1 s timeout) while this process's event loop was
 * stalled, so the reply waits in the list, and one more turn after the
 * stall does not fetch it; the call's flush does (a fence pushed to the
 * list, read up to). The node is a worker in another process whose main
 * thread is busy with a task (`--pool inline`) until after the reader's
 * BRPOP ended, and answers then, while this process is still stalled past
 * the call's timeout. Keys under a prefix of this file's own.
 */

import assert from "node:assert/strict";
import { Celery, Control } from "../mod.ts";
import { stallAfterBroadcast } from "./helpers/broker_wraps.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("replies-flush");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

/** The call's timeout: the reader's BRPOP (1 s) ends well before it. */
const TIMEOUT_S = 3;
/** How long this process's event loop is blocked after the request: past the timeout. */
const STALL_MS = 3500;
/** How long the worker's main thread is busy: it answers ~1.5 s after the request. */
const BUSY_MS = 1800;
/** Time for the worker to start the busy task before the request goes out. */
const START_MS = 300;

Deno.test({
  name: "replies on redis: a reply that reached the server in time but not the socket is kept",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `flush-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker([
    ...["--app", "./tests/apps/busy_app.ts", "-b", url, "--backend", url],
    ...["-Q", queue, "-P", "inline", "-c", "1", "-n", "flush@%h"],
  ]);
  const node = worker.output.match(/(flush@\S+) ready/)![1];
  const app = new Celery({ broker: url, backend: url });
  try {
    const control = new Control(async () => stallAfterBroadcast(await app.broker(), STALL_MS));
    await app.sendTask("busy.block", [BUSY_MS], { queue });
    await new Promise((r) => setTimeout(r, START_MS));
    const started = performance.now();
    const replies = await control.ping({ timeout: TIMEOUT_S, destination: [node] });
    assert.deepEqual(replies, [{ [node]: { ok: "pong" } }]);
    // The flush is a round trip, not a wait for the reader's next BRPOP timeout.
    assert.ok(performance.now() - started < STALL_MS + 1000, "the flush took too long");
  } finally {
    await app.close();
    await worker.stop();
    await deleteKeys(prefix);
  }
});
