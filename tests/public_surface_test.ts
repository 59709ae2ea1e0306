/**
 * The package's entry points: `mod.ts` holds the application API only; the
 * Celery wire protocol and the broker/backend ports live in `protocol.ts`
 * (`@celeriac/celeriac/protocol`).
 */

import assert from "node:assert/strict";
import * as app from "../mod.ts";
import * as protocol from "../protocol.ts";

/** Error classes an application catches, exported by both entry points. */
const SHARED = new Set(["BrokerConnectionError", "EncodeError"]);

Deno.test("public surface: mod.ts exports no protocol or port internals", () => {
  const leaked = Object.keys(protocol).filter((name) => !SHARED.has(name) && name in app);
  assert.deepEqual(leaked, []);
});

Deno.test("public surface: mod.ts holds the application API", () => {
  for (
    const name of [
      "Celery",
      "Task",
      "AsyncResult",
      "Retry",
      "TaskError",
      "TimeoutError",
      "currentTask",
    ]
  ) {
    assert.ok(name in app, `${name} missing from mod.ts`);
  }
});

Deno.test("public surface: the protocol entry point is exported as ./protocol", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(config.exports["./protocol"], "./protocol.ts");
  assert.ok(config.publish.include.includes("protocol.ts"));
  for (const name of ["encodeTaskMessage", "decodeResultMeta", "openBroker", "addressedTo"]) {
    assert.equal(typeof (protocol as Record<string, unknown>)[name], "function", name);
  }
});
