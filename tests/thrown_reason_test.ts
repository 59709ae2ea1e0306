/**
 * A value thrown that is not an Error (a string, null) while the worker
 * receives a delivery: the delivery is parked with a reason describing
 * the value, the same whether the throw is caught for that delivery alone
 * (its routing) or for its whole batch (the last resort). Before, the first
 * said "unknown", the second "undefined" (and threw on null).
 */

import { recordingState } from "./helpers/recording_state.ts";
import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { Intake } from "../src/worker/intake.ts";
import { receiveOrPark } from "../src/worker/last_resort.ts";
import type { Pool } from "../src/worker/pool.ts";
import { taskDelivery } from "./helpers/deliveries.ts";

function state() {
  const { st, parked } = recordingState();
  st.app.task("t.add", (a: number, b: number) => a + b);
  st.pool = { run: () => {} } as unknown as Pool;
  return { st, parked };
}

/** The reason a delivery is parked with when its routing throws `thrown`. */
async function routingReason(thrown: unknown): Promise<string> {
  const { st, parked } = state();
  st.lifecycle.subscribe((e) => {
    if (e.type === "received") throw thrown;
  });
  await receiveOrPark(st, new Intake(st), [taskDelivery("t.add", "bad")]);
  await st.drainSettling();
  assert.equal(parked.length, 1);
  return parked[0].reason;
}

/** The reason a delivery is parked with when its batch's intake throws `thrown`. */
async function batchReason(thrown: unknown): Promise<string> {
  const { st, parked } = state();
  const intake = { receive: () => Promise.reject(thrown), holding: () => [] } as unknown as Intake;
  const d: Delivery = taskDelivery("t.add", "bad");
  await receiveOrPark(st, intake, [d]);
  await st.drainSettling();
  assert.equal(parked.length, 1);
  return parked[0].reason;
}

Deno.test("a thrown string parks its delivery with the same reason, describing it, on both paths", async () => {
  const want = 'worker error while receiving it: thrown value "listener broke" (not an Error)';
  // Before: "...: unknown" and "...: undefined".
  assert.equal(await routingReason("listener broke"), want);
  assert.equal(await batchReason("listener broke"), want);
});

Deno.test("a thrown null parks its delivery with the same reason on both paths", async () => {
  const want = "worker error while receiving it: thrown value null (not an Error)";
  assert.equal(await routingReason(null), want);
  // Before: reading its message threw out of the last resort.
  assert.equal(await batchReason(null), want);
});

Deno.test("a thrown Error keeps its message as the reason on both paths", async () => {
  const want = "worker error while receiving it: listener broke";
  assert.equal(await routingReason(new TypeError("listener broke")), want);
  assert.equal(await batchReason(new TypeError("listener broke")), want);
});
