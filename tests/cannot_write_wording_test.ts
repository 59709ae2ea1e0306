/**
 * A KV file that cannot be written (its disk full: a `BrokerConnectionError`
 * with verb "write") is not an unreachable server: the warnings about a
 * lease renewal round slowed or hung by it, and about a shutdown that stops
 * waiting for it, say it cannot write, with the error (which says what to
 * free), instead of "check the broker's connection", "raise the visibility
 * timeout" or "a server is unreachable". The error is the one KV's guard
 * makes of SQLite's.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { unwritableKv } from "../src/broker/kv_disk.ts";
import { OutageWatch, retryWhileDown } from "../src/broker/outage.ts";
import type { Delivery } from "../src/broker/port.ts";
import { renewLeases } from "../src/worker/leases.ts";
import { settleUnlessOutage, unlessOutage } from "../src/worker/shutdown_steps.ts";
import type { WorkerState } from "../src/worker/worker_state.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";

/** What writing a KV file on a full disk throws, as the broker sees it. */
const diskFull = () =>
  unwritableKv("/data/q.sqlite", new TypeError("database or disk is full")) as Error;

/** A worker's state whose broker renews leases with `extend`, a round every 200 ms. */
function leasing(extend: () => Promise<Delivery[]>): WorkerState {
  return {
    hostname: "w@host",
    broker: { visibilityTimeout: 800, extend },
    running: new Map(),
    unsettled: [],
  } as unknown as WorkerState;
}

const held = () => [{ deliveryTag: "t1" } as Delivery];

Deno.test("cannot write: a lease renewal round hung on a full disk says so", async () => {
  const records = await captureLogs("warning");
  const stop = new AbortController();
  const extend = () =>
    retryWhileDown(() => Promise.reject(diskFull()), { signal: stop.signal, limit: 60 });
  const timer = renewLeases(leasing(extend), held, () => {});
  try {
    const hung = () =>
      records.map(logLine).filter((l) => l.includes("renewal round has been running"));
    await until("the hung round is logged", () => hung().length > 0, 5_000);
    // Before: "…; check the broker's connection".
    assert.match(hung()[0], /; the broker cannot write: Cannot write kv:\/\/\/data\/q\.sqlite/);
    assert.match(hung()[0], /Free disk space/);
    assert.doesNotMatch(hung()[0], /connection/);
  } finally {
    clearInterval(timer);
    stop.abort();
    await reset();
  }
});

Deno.test("cannot write: a lease renewal round slowed by a full disk says so", async () => {
  const records = await captureLogs("warning");
  let fails = 3; // 100 + 200 + 400 ms of backoff: longer than the 200 ms between rounds
  const extend = () =>
    retryWhileDown(() => fails-- > 0 ? Promise.reject(diskFull()) : Promise.resolve([]));
  const timer = renewLeases(leasing(extend), held, () => {});
  try {
    const slow = () => records.map(logLine).filter((l) => l.includes("Renewing 1 lease(s) took"));
    await until("the slow round is logged", () => slow().length > 0, 5_000);
    // Before: "…; raise the visibility timeout or hold fewer ETA tasks per worker".
    assert.match(slow()[0], /as the broker cannot write \(Cannot write kv:\/\/\/data\/q\.sqlite/);
    assert.doesNotMatch(slow()[0], /raise the visibility timeout/);
  } finally {
    clearInterval(timer);
    await reset();
  }
});

Deno.test("cannot write: a shutdown that stops waiting for a full disk says so", async () => {
  const records = await captureLogs("warning");
  const stop = new AbortController();
  const step = () =>
    retryWhileDown(() => Promise.reject(diskFull()), { signal: stop.signal, limit: 60 })
      .catch(() => {});
  try {
    await unlessOutage(leasing(() => Promise.resolve([])), step, "requeue prefetched messages");
    const left = records.map(logLine).filter((l) => l.includes("not waiting to requeue"));
    assert.equal(left.length, 1);
    // Before: "w@host: a server is unreachable: not waiting to …".
    assert.match(left[0], /w@host: cannot write \(Cannot write kv:\/\/\/data\/q\.sqlite/);
    assert.doesNotMatch(left[0], /unreachable/);
  } finally {
    stop.abort();
    await reset();
  }
});

Deno.test("cannot write: a shutdown left waiting for an unreachable server does not blame a disk write that got through", async () => {
  const records = await captureLogs("warning");
  const stop = new AbortController();
  const outages = new OutageWatch();
  const unreachable = () =>
    new BrokerConnectionError("redis://10.0.0.9:6379/0", new Error("connect ECONNREFUSED"));
  // The result store waits for an unreachable Redis; an acknowledgement on the KV file starts
  // waiting later (the disk full once), is written and is through.
  const store = outages.run(() =>
    retryWhileDown(() => Promise.reject(unreachable()), { limit: 60, signal: stop.signal })
  ).catch(() => {});
  await new Promise((ok) => setTimeout(ok, 200));
  let n = 0;
  await outages.run(() =>
    retryWhileDown(() => n++ === 0 ? Promise.reject(diskFull()) : Promise.resolve(), { limit: 60 })
  );
  const s = {
    hostname: "w@host",
    outages,
    drainSettling: () => store,
    leaveSettlingBehind() {},
  } as unknown as WorkerState;
  try {
    await settleUnlessOutage(s);
    const left = records.map(logLine).filter((l) => l.includes("not waiting to store results"));
    assert.equal(left.length, 1);
    // Before: "w@host: cannot write (Cannot write kv:///data/q.sqlite…)": the write that got through.
    assert.match(left[0], /w@host: a server is unreachable: not waiting to store results/);
  } finally {
    stop.abort();
    await store;
    await reset();
  }
});

Deno.test("cannot write: a Redis master short of replicas (NOREPLICAS) refuses writes, it is not unreachable", async () => {
  const records = await captureLogs("warning");
  const stop = new AbortController();
  const refused = () =>
    new BrokerConnectionError(
      "redis://127.0.0.1:6379/0",
      new Error("NOREPLICAS Not enough good replicas to write."),
    );
  let n = 0;
  try {
    await retryWhileDown(() => n++ === 0 ? Promise.reject(refused()) : Promise.resolve(), {
      what: "declare queue q1",
      limit: 60,
      signal: stop.signal,
    });
    const said = records.map(logLine).filter((l) => l.includes("declare queue q1"));
    assert.ok(said.length >= 1, records.map(logLine).join("\n"));
    // Before: "declare queue q1: server unreachable (… NOREPLICAS …)".
    assert.match(said[0], /declare queue q1: server refuses writes \(.*NOREPLICAS/);
  } finally {
    stop.abort();
    await reset();
  }
});
