/**
 * The result backend conformance suite, run against every backend.
 */

import assert from "node:assert/strict";
import type { ResultBackend } from "../src/backend/port.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";

/** Opens a backend; all backends opened by one factory share one namespace. */
export type BackendFactory = () => Promise<ResultBackend>;

function meta(
  taskId: string,
  status: "SUCCESS" | "FAILURE" | "STARTED" | "RETRY",
  result: unknown,
) {
  const ready = status === "SUCCESS" || status === "FAILURE";
  return {
    taskId,
    status,
    meta: encodeResultMeta({ taskId, status, result, dateDone: ready ? new Date() : null }),
  };
}

/**
 * Register the conformance tests for one backend.
 *
 * @param name backend label in test names
 * @param open opens a backend on an isolated namespace
 * @param ignore skip the suite (its backend is not available here)
 */
export function backendConformance(name: string, open: BackendFactory, ignore = false): void {
  const t = (title: string, fn: (b: ResultBackend) => Promise<void>) =>
    Deno.test({ name: `${name} backend: ${title}`, ignore }, async () => {
      const backend = await open();
      try {
        await fn(backend);
      } finally {
        await backend.close();
      }
    });

  t("nothing stored reads as null (PENDING)", async (b) => {
    assert.equal(await b.get(crypto.randomUUID()), null);
  });

  t("a stored meta reads back with its fields", async (b) => {
    const id = crypto.randomUUID();
    await b.store([meta(id, "SUCCESS", { big: 2n ** 64n, list: [1, "a"] })]);
    const got = await b.get(id);
    assert.equal(got?.status, "SUCCESS");
    assert.deepEqual(got?.result, { big: 2n ** 64n, list: [1, "a"] });
    assert.equal(got?.task_id, id);
    assert.match(got?.date_done ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  });

  t("a stored SUCCESS is never replaced", async (b) => {
    const id = crypto.randomUUID();
    await b.store([meta(id, "SUCCESS", 1)]);
    await b.store([meta(id, "FAILURE", { exc_type: "X", exc_message: [], exc_module: "m" })]);
    assert.equal((await b.get(id))?.status, "SUCCESS");
    await b.store([meta(id, "STARTED", { pid: 1, hostname: "h" })]);
    assert.equal((await b.get(id))?.result, 1);
  });

  t("waitFor resolves when a ready state is stored later, by another client", async (b) => {
    const id = crypto.randomUUID();
    const other = await open();
    try {
      const waiting = b.waitFor(id, AbortSignal.timeout(5000));
      await new Promise((r) => setTimeout(r, 100));
      await other.store([meta(id, "STARTED", { pid: 1, hostname: "h" })]);
      await new Promise((r) => setTimeout(r, 100));
      await other.store([meta(id, "SUCCESS", 42)]);
      const got = await waiting;
      assert.equal(got.status, "SUCCESS");
      assert.equal(got.result, 42);
    } finally {
      await other.close();
    }
  });

  t("waitFor resolves at once for a result stored before", async (b) => {
    const id = crypto.randomUUID();
    await b.store([
      meta(id, "FAILURE", { exc_type: "ValueError", exc_message: ["x"], exc_module: "builtins" }),
    ]);
    const got = await b.waitFor(id, AbortSignal.timeout(2000));
    assert.equal(got.status, "FAILURE");
  });

  t("many concurrent waiters on different ids all resolve", async (b) => {
    const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
    const waits = ids.map((id) => b.waitFor(id, AbortSignal.timeout(5000)));
    await b.store(ids.map((id, i) => meta(id, "SUCCESS", i)));
    const got = await Promise.all(waits);
    assert.deepEqual(got.map((m) => m.result), ids.map((_, i) => i));
  });

  t("waitFor rejects with the abort reason", async (b) => {
    const id = crypto.randomUUID();
    await assert.rejects(
      b.waitFor(id, AbortSignal.timeout(100)),
      (e: Error) => e.name === "TimeoutError",
    );
  });

  t(
    "a wait aborted while it is still starting rejects with the reason, not as an unhandled rejection",
    async (b) => {
      // Aborted before the backend's first read or subscription is done: the
      // rejection must reach the caller, not end the process as uncaught.
      const controller = new AbortController();
      const waiting = b.waitFor(crypto.randomUUID(), controller.signal);
      controller.abort(new DOMException("gave up", "TimeoutError"));
      await assert.rejects(waiting, (e: Error) => e.name === "TimeoutError");
      const waitingStored = b.waitFor(crypto.randomUUID(), controller.signal);
      await assert.rejects(waitingStored, (e: Error) => e.name === "TimeoutError");
    },
  );

  t("an abort ends the wait, not the reading of a ready result stored before", async (b) => {
    // Celery's get(timeout=0) on a finished task returns its result: the
    // timeout bounds the wait for a result, not reading one (here a big one).
    // Two tasks: on rpc:// a ready result is handed to the first wait that reads it.
    const [id, id2] = [crypto.randomUUID(), crypto.randomUUID()];
    const big = "x".repeat(4 << 20);
    await b.store([meta(id, "SUCCESS", big), meta(id2, "SUCCESS", big)]);
    const aborted = new AbortController();
    aborted.abort(new DOMException("gave up", "TimeoutError"));
    assert.equal((await b.waitFor(id, aborted.signal)).result, big);
    assert.equal((await b.waitFor(id2, AbortSignal.timeout(0))).result, big);
    await assert.rejects(
      b.waitFor(crypto.randomUUID(), aborted.signal),
      (e: Error) => e.name === "TimeoutError",
    );
  });

  t("forget deletes a result", async (b) => {
    const id = crypto.randomUUID();
    await b.store([meta(id, "SUCCESS", 1)]);
    await b.forget(id);
    assert.equal(await b.get(id), null);
  });
}
