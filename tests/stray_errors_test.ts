/**
 * What the inline pool's thread logs for an error nobody handled
 * (src/worker/stray_errors.ts): the same text a task failure stores as its
 * traceback, so a rejected plain object reads as its JSON.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { catchStrayErrors } from "../src/worker/stray_errors.ts";

Deno.test("stray errors: a rejected plain object is logged as its JSON, not [object Object]", async () => {
  const records = await captureLogs("error");
  const release = catchStrayErrors();
  // Added after catchStrayErrors' listener, so it is called after it.
  const dispatched = new Promise((resolve) =>
    globalThis.addEventListener("unhandledrejection", resolve, { once: true })
  );
  try {
    Promise.reject({ code: 7, reason: "quota" });
    await dispatched;
  } finally {
    release();
    await reset();
  }
  assert.equal(records.length, 1);
  assert.equal(records[0].properties.kind, "unhandled rejection");
  assert.equal(records[0].properties.error, '{"code": 7, "reason": "quota"}');
});
