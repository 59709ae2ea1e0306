/**
 * A redelivered task whose stored FAILURE is a refusal (the worker parked
 * it unrun) runs again; one that ran and failed, even with an error named
 * like a refusal, is a duplicate. Pure: a stub result backend.
 */

import assert from "node:assert/strict";
import type { ResultBackend } from "../src/backend/port.ts";
import type { Delivery } from "../src/broker/port.ts";
import { REFUSED_MODULE } from "../src/worker/result_entries.ts";
import { finishedBefore } from "../src/worker/screening.ts";

function failed(excType: string, excModule: string) {
  return {
    status: "FAILURE",
    result: { exc_type: excType, exc_message: ["x"], exc_module: excModule },
    traceback: null,
    children: [],
    date_done: null,
    task_id: "",
  };
}

Deno.test("screening: an error a task threw is a finished run, whatever its name; Celeriac's own refusal is not", async () => {
  const metas: Record<string, unknown> = {
    thirdParty: failed("ProtocolError", "urllib3.exceptions"),
    thrownInJs: failed("ProtocolError", "celeriac"),
    internalInJs: failed("InternalError", "celeriac"),
    poisonInJs: failed("PoisonMessage", "celeriac"),
    refused: failed("ProtocolError", REFUSED_MODULE),
    unregistered: failed("NotRegistered", "celery.exceptions"),
    poison: failed("PoisonMessage", REFUSED_MODULE),
    lastResort: failed("InternalError", REFUSED_MODULE),
  };
  const backend = {
    get: (id: string) => Promise.resolve(metas[id] ?? null),
  } as unknown as ResultBackend;
  const deliveries = Object.keys(metas).map((id) =>
    ({ redelivered: true, headers: { id } }) as unknown as Delivery
  );
  const done = await finishedBefore(backend, deliveries);
  assert.deepEqual([...done.keys()].sort(), [
    "internalInJs",
    "poisonInJs",
    "thirdParty",
    "thrownInJs",
  ]);
});
