/**
 * A lease renewal round that never ends stops all renewal (the next round
 * waits for it), so it is logged as a warning once it has run for a
 * visibility timeout (review 29: before, nothing was logged until the
 * round ended, so a hung round stopped renewal silently).
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { Delivery } from "../src/broker/port.ts";
import { renewLeases } from "../src/worker/leases.ts";
import type { WorkerState } from "../src/worker/worker_state.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";

Deno.test("lease renewal: a round that never ends is logged once, after 4 intervals", async () => {
  const records = await captureLogs("warning");
  let rounds = 0;
  const state = {
    broker: {
      visibilityTimeout: 800, // a round every 200 ms
      extend: () => {
        rounds++;
        return new Promise<Delivery[]>(() => {}); // hangs
      },
    },
    running: new Map(),
    unsettled: [],
  } as unknown as WorkerState;
  const held = [{ deliveryTag: "t1" } as Delivery];
  const timer = renewLeases(state, () => [...held], () => {});
  try {
    const hung = () =>
      records.map(logLine).filter((l) => l.includes("renewal round has been running"));
    await until("the hung round is logged", () => hung().length > 0, 5_000);
    await new Promise((r) => setTimeout(r, 1_000)); // 5 more intervals
    assert.equal(hung().length, 1, "logged once");
    assert.equal(rounds, 1, "no round overlapped the hung one");
    assert.match(hung()[0], /^warning .*running for 800 ms \(4 renewals skipped\)/);
  } finally {
    clearInterval(timer);
    await reset();
  }
});
