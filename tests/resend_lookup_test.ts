/**
 * What a suppressed duplicate looks up before sending its follow-ups again
 * (settle's resends): only those whose task id came from their signature,
 * at most 500 reads at once, a read retried while the backend is down,
 * and a follow-up left out when any state is stored for its id. No server
 * needed.
 */

import assert from "node:assert/strict";
import type { ResultBackend } from "../src/backend/port.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import type { ResultMeta } from "../src/protocol/result_meta.ts";
import type { Outgoing } from "../src/worker/follow_ups.ts";
import { storedIds } from "../src/worker/screening.ts";
import { settle, Settlement } from "../src/worker/settlement.ts";

/** A backend whose `get` answers from `states`, counting reads and the most at once. */
function backendOf(
  states: Record<string, ResultMeta["status"] | Error>,
): ResultBackend & { reads: string[]; most: number } {
  let running = 0;
  const b = {
    transport: "fake",
    reads: [] as string[],
    most: 0,
    async get(id: string): Promise<ResultMeta | null> {
      b.reads.push(id);
      b.most = Math.max(b.most, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      const s = states[id];
      if (s instanceof Error) {
        delete states[id]; // fails once
        throw s;
      }
      return s ? { task_id: id, status: s, result: null } as unknown as ResultMeta : null;
    },
  };
  return b as unknown as ResultBackend & { reads: string[]; most: number };
}

Deno.test("storedIds: reads 500 at a time and finds any stored state", async () => {
  const ids = Array.from({ length: 1200 }, (_, i) => `id-${i}`);
  const backend = backendOf({ "id-3": "STARTED", "id-700": "RETRY", "id-1199": "SUCCESS" });
  const stored = await storedIds(backend, ids);
  assert.deepEqual([...stored].sort(), ["id-1199", "id-3", "id-700"]);
  assert.equal(backend.reads.length, 1200);
  assert.ok(backend.most <= 500, `${backend.most} reads at once`);
});

Deno.test("storedIds: a read failing while the backend is down is retried; an undecodable state counts as stored", async () => {
  const backend = backendOf({
    down: new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("ECONNREFUSED")),
    spoiled: new ProtocolError("The result of task spoiled is not JSON"),
  });
  const stored = await storedIds(backend, ["down", "spoiled", "none"], { limit: 5 });
  assert.deepEqual([...stored], ["spoiled"]);
  assert.equal(backend.reads.filter((id) => id === "down").length, 2);
});

Deno.test("settle: only resends whose id came from their signature are looked up; one with a state stored is left out", async () => {
  const backend = backendOf({ sent: "STARTED" });
  const published: string[] = [];
  const out = (taskId: string, frozen: boolean): Outgoing =>
    ({
      message: () => ({ headers: { id: taskId } }),
      target: { exchange: "", routingKey: "q" },
      taskId,
      frozen,
    }) as unknown as Outgoing;
  const s = new Settlement();
  s.resends.push(out("sent", true), out("unsent", true), out("fresh", false));
  s.acks.push({ deliveryTag: "d" } as unknown as Delivery);
  const broker = { ack: () => Promise.resolve() } as unknown as Broker;
  await settle(s, {
    broker,
    backend,
    publish: (m) => {
      published.push(String(m.headers.id));
      return Promise.resolve();
    },
  });
  assert.deepEqual(backend.reads.sort(), ["sent", "unsent"]);
  assert.deepEqual(published.sort(), ["fresh", "unsent"]);
});
