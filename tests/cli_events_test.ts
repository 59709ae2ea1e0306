/**
 * `worker.ts events` when stdout is not a terminal (a pipe, a file): the
 * live view's screen codes would only garble the output, so it writes the
 * `--dump` lines instead and says so on stderr.
 */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";

Deno.test("cli events: without a terminal, the live view writes the --dump lines", async () => {
  const events = Proc.start("events", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "events",
    "--broker",
    "kv://:memory:",
  ]);
  try {
    await events.waitFor(/evdump: starting capture|Celeriac events —/, 30_000);
  } finally {
    await events.stop("SIGINT");
  }
  assert.ok(!events.output.includes("\x1b["), `no terminal codes:\n${events.output}`);
  assert.match(events.output, /stdout is not a terminal.*--dump/);
});
