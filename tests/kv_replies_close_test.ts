/**
 * Replies read from a KV queue (subscribeReplies): a broker closed while a
 * flush() holds the reading loop ends the loop quietly, without one more
 * take() on the closed broker and its "Stopped reading replies" error.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { type RepliesHost, subscribeReplies } from "../src/broker/kv_fanout.ts";
import type { Delivery, TakeOptions } from "../src/broker/port.ts";

Deno.test("kv replies: closing the broker during flush() logs no error", async () => {
  const records = await captureLogs("info");
  try {
    let closed = false;
    let takes = 0;
    const drained = Promise.withResolvers<void>();
    const loops: Promise<unknown>[] = [];
    const host: RepliesHost = {
      closed: () => closed,
      take(_queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
        takes++;
        if (closed) return Promise.reject(new Error("this broker was closed"));
        return new Promise((resolve) => {
          if (options.signal?.aborted) return resolve([]);
          options.signal?.addEventListener("abort", () => resolve([]), { once: true });
        });
      },
      takeNow: async () => {
        closed = true; // the broker closes while flush() reads the queue
        await drained.promise;
        return [];
      },
      ack: () => Promise.resolve(),
      purge: () => Promise.resolve(0),
      run<T>(fn: () => Promise<T>): Promise<T> {
        const p = fn();
        loops.push(p);
        return p;
      },
    };
    const stop = new AbortController();
    const sub = await subscribeReplies(host, "replies", () => {}, stop.signal);
    await new Promise((r) => setTimeout(r, 10));
    const flushing = sub.flush!();
    drained.resolve();
    await flushing;
    await Promise.all(loops);
    assert.equal(takes, 1, "no take() after the close");
    assert.deepEqual(records.filter((r) => r.level === "error").map((r) => r.message), []);
    stop.abort();
  } finally {
    await reset();
  }
});
