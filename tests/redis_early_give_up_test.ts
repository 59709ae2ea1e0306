/**
 * A delivery handed out before its take script replied, whose take script
 * was given up after the outage limit (Redis unreachable that long):
 * settling it fails at once, also when asked for after the give-up (an
 * acknowledgement sent behind the take script fails with it and comes
 * back for the usual way), instead of being retried for another outage
 * limit — which made a worker's shutdown against a hung Redis wait for
 * one more reconnect attempt (10 s) at least, and up to another outage
 * limit. The delivery stays in its claim list or in `unacked`, to be
 * returned or restored as after a crash.
 */

import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { EarlyDeliveries } from "../src/broker/redis_early.ts";

function delivery(tag: string): Delivery {
  return {
    deliveryTag: tag,
    body: new Uint8Array(),
    headers: {},
    properties: {},
    contentType: "application/json",
    contentEncoding: "utf-8",
    queue: "q",
  } as unknown as Delivery;
}

Deno.test("redis early hand-out: settling fails at once after its take script was given up", async () => {
  const early = new EarlyDeliveries();
  const [a, b, c] = [delivery("a"), delivery("b"), delivery("c")];
  const ea = early.add("raw-a", a);
  early.add("raw-b", b);
  // Waiting for its record: settling waits.
  const waiting = early.settleable([a]);
  assert.ok(waiting, "a waits for its record");
  const down = new Error("Redis did not answer within the outage limit");
  early.giveUp(ea, down);
  await assert.rejects(waiting, (err) => err === down);
  // Asked for after the give-up: fails at once, with the same reason.
  const later = early.settleable([c, a]);
  assert.ok(later, "settling a given-up delivery is not taken as nothing to wait for");
  await assert.rejects(later, (err) => err === down);
  // The others are not affected: b still waits for its record, c never did.
  assert.ok(early.settleable([b]));
  assert.equal(early.settleable([c]), null);
  early.recorded("raw-b", "tag-b");
  assert.deepEqual(await early.settleable([b]) ?? [b], [b]);
});
