/**
 * A negative number after a flag that takes a value is its value, as click
 * reads Celery's flags: `call --countdown -5` runs the task now, and
 * `inspect -t -1` waits no time (no node replies), where `parseArgs` took
 * `-5` for a flag and the command exited 2.
 */

import assert from "node:assert/strict";
import { joinNegativeValues } from "../src/cli/arg_errors.ts";
import { withKvBroker } from "./helpers/kv_temp.ts";
import { runCli } from "./helpers/procs.ts";

const env = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" };

Deno.test("cli: call --countdown -5 sends the task due now; inspect -t -1 waits no time", async () => {
  await withKvBroker("celeriac-negative-", async (url, app) => {
    const [call, inspect] = await Promise.all([
      runCli(["call", "t.add", "-b", url, "-a", "[1, 2]", "--countdown", "-5"], { env }),
      runCli(["inspect", "ping", "-b", url, "-t", "-1"], { env }),
    ]);
    assert.equal(call.code, 0, call.stderr);
    assert.equal(inspect.code, 69, inspect.stderr);
    assert.match(inspect.stderr, /No nodes replied/);
    const broker = await app.broker();
    const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.ok(d, "the message is in the queue");
    assert.ok(Date.parse(String(d.headers.eta)) <= Date.now(), String(d.headers.eta));
    await broker.ack([d]);
  });
});

Deno.test("joinNegativeValues: only a flag that takes a value, only a number, not after --", () => {
  const options = {
    countdown: { type: "string" },
    timeout: { type: "string", short: "t" },
    force: { type: "boolean", short: "f" },
  } as const;
  assert.deepEqual(
    joinNegativeValues([
      "--countdown",
      "-.5",
      "-t",
      "-1e3",
      "-f",
      "-2",
      "-t",
      "-x",
      "--",
      "-t",
      "-1",
    ], options),
    ["--countdown=-.5", "--timeout=-1e3", "-f", "-2", "-t", "-x", "--", "-t", "-1"],
  );
});
