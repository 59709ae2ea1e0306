/**
 * `report` prints this command's own software and settings, as `celery
 * report` does (which asks no worker), then the report of each worker that
 * answers; with none up it exits 0, not 69.
 */

import assert from "node:assert/strict";
import { runCli } from "./helpers/procs.ts";

Deno.test("cli report: with no worker up, the local report and exit 0, as celery report", async () => {
  // It exited 69, "No nodes replied", and printed nothing of its own.
  const env = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" };
  const ran = await runCli(["report", "--broker", "kv://:memory:", "-t", "0.2"], { env });
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^software -> celeriac:\S+ deno:\S+ v8:/m);
  assert.match(ran.stdout, /^settings -> transport:kv results:/m);
  assert.match(ran.stdout, /^broker_url: 'kv:\/\/:memory:'$/m);
  assert.match(
    ran.stderr,
    /^No worker replied: the report above is this command's own\. kv:\/\/:memory: is private/,
  );
});
