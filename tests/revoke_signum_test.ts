/**
 * `control terminate SIGKILL ID` (Celery's `revoke(terminate=True,
 * signal="SIGKILL")`): the worker's `task-revoked` event carries the signal
 * really sent (`signum=9`), as a Celery worker's does, not always SIGTERM's
 * 15. Without a signal it is SIGTERM, Celery's default.
 */

import assert from "node:assert/strict";
import type { ResultBackend } from "../src/backend/port.ts";
import type { Broker } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import type { EventDispatcher } from "../src/worker/event_dispatcher.ts";
import type { Intake } from "../src/worker/intake.ts";
import type { Pool } from "../src/worker/pool.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import { type ControlTarget, handleControl } from "../src/worker/remote_control.ts";
import { revokeTasks } from "../src/worker/revoke.ts";
import { sendTaskEvents } from "../src/worker/task_events.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { signalNumber } from "../src/protocol/signal_names.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { taskDelivery } from "./helpers/deliveries.ts";

/** The `task-revoked` fields a terminate with these control arguments gives. */
async function revokedEvent(args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app }, "test@host");
  st.broker = {
    ack: () => Promise.resolve(),
    addRevoked: () => Promise.resolve(),
  } as unknown as Broker;
  st.backend = { store: () => Promise.resolve() } as unknown as ResultBackend;
  st.pool = { revoke: () => {}, terminate: () => {} } as unknown as Pool;
  const sent: [string, Record<string, unknown>][] = [];
  const events = {
    taskEvents: true,
    sendTask: (type: string, fields: Record<string, unknown>) => sent.push([type, fields]),
  } as unknown as EventDispatcher;
  st.lifecycle.subscribe(sendTaskEvents(events));
  const delivery = taskDelivery("t.sleep", "long");
  st.running.set(1, {
    delivery,
    req: decodeTaskHeaders(delivery),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  const intake = { revoke: () => {} } as unknown as Intake;
  const target = {
    hostname: "test@host",
    revoke: (ids: string[], terminate: boolean, stored?: boolean, signum?: number) =>
      revokeTasks(st, intake, ids, { terminate, stored, signum }),
  } as unknown as ControlTarget;
  const reply = handleControl(
    {
      method: "revoke",
      arguments: { task_id: "long", terminate: true, ...args },
      destination: null,
    },
    target,
  );
  assert.deepEqual(reply, { ok: "terminate: long" });
  settleOutcomes(st, [{ seq: 1, ok: false, revoked: true, runtime: 0.01 }]);
  await st.drainSettling();
  await app.close();
  const revoked = sent.filter(([type]) => type === "task-revoked").map(([, f]) => f);
  assert.equal(revoked.length, 1, JSON.stringify(sent));
  return revoked[0];
}

Deno.test("terminate: task-revoked carries the signal sent (SIGKILL: 9), as Celery's worker", async () => {
  // It always said signum=15: Flower and `events --dump` showed SIGTERM for a SIGKILL.
  const killed = await revokedEvent({ signal: "SIGKILL" });
  assert.deepEqual(killed, { uuid: "long", terminated: true, signum: 9, expired: false });
  assert.equal((await revokedEvent({ signal: "USR1" })).signum, 10);
  assert.equal((await revokedEvent({ signal: 2 })).signum, 2);
  assert.equal((await revokedEvent({})).signum, 15);
});

Deno.test("signalNumber: Linux's numbers, as Python's signal module on Linux", () => {
  assert.deepEqual(
    ["SIGHUP", "INT", "SIGQUIT", "SIGKILL", "USR2", "SIGTERM", "SIGCHLD", "SIGSYS"].map(
      signalNumber,
    ),
    [1, 2, 3, 9, 12, 15, 17, 31],
  );
  assert.equal(signalNumber(undefined), 15);
});
