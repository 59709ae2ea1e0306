/**
 * Celery's `inspect objgraph|memsample|memdump` and `control
 * election|pool_restart` are sent, with the arguments Celery's command line
 * gives them, so that a Celery worker can be asked from Celeriac's command
 * line (a Celeriac worker answers them with an error). They were refused
 * before sending, exit 2.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { describeReply, runControl, runInspect } from "../src/cli/inspect.ts";
import { jsonText } from "../src/protocol/json.ts";

Deno.test("cli: Celery's objgraph, memsample, memdump, election, pool_restart are sent", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: [string, Record<string, unknown>][] = [];
  app.control.call = ((method: string, args: Record<string, unknown>) => {
    sent.push([method, args]);
    return Promise.resolve([{ "py@h": { ok: "x" } }]);
  }) as unknown as typeof app.control.call;
  try {
    const json = { json: true };
    assert.equal(await runInspect(app, ["objgraph", "Request", "50", "3"], json), 0);
    assert.equal(await runInspect(app, ["objgraph"], json), 0);
    assert.equal(await runInspect(app, ["memsample"], json), 0);
    assert.equal(await runInspect(app, ["memdump", "5"], json), 0);
    assert.equal(await runControl(app, ["election"], json), 0);
    assert.equal(await runControl(app, ["pool_restart"], json), 0);
    assert.deepEqual(sent, [
      ["objgraph", { type: "Request", num: 50, max_depth: 3 }],
      ["objgraph", {}],
      ["memsample", {}],
      ["memdump", { samples: 5 }],
      ["election", {}],
      ["pool_restart", {}],
    ]);
    assert.equal(await runInspect(app, ["memdump", "many"], json), 2, "not a number: refused");
    assert.equal(sent.length, 6);
  } finally {
    await app.close();
  }
});

Deno.test("cli: control shutdown --json prints [] (no worker replies to it), not nothing", async () => {
  // It printed nothing and exited 0: a script parsing stdout as JSON failed.
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const printed: string[] = [];
  const log = globalThis.console.log;
  globalThis.console.log = (line: string) => printed.push(line);
  try {
    assert.equal(await runControl(app, ["shutdown"], { json: true, destination: "nobody@h" }), 0);
  } finally {
    globalThis.console.log = log;
    await app.close();
  }
  assert.deepEqual(printed, ["[]"]);
});

Deno.test("cli: inspect ends with 'N nodes online.', as Celery's inspect", async () => {
  // It said "1 node replied.", where Celery 5.2.6 says "1 node online.".
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  app.control.call =
    (() => Promise.resolve([{ "py@h": { ok: "pong" } }])) as unknown as typeof app.control.call;
  const printed: string[] = [];
  const log = globalThis.console.log;
  globalThis.console.log = (line: string) => printed.push(line);
  try {
    assert.equal(await runInspect(app, ["ping"], {}), 0);
  } finally {
    globalThis.console.log = log;
    await app.close();
  }
  assert.equal(printed.at(-1), "\n1 node online.");
});

Deno.test("cli: inspect active_queues shows each queue whole, as Celery's, not its name alone", () => {
  const queue = {
    name: "emails",
    exchange: { name: "emails", type: "direct" },
    routing_key: "emails",
  };
  assert.equal(describeReply("active_queues", [queue]), `* ${jsonText(queue)}`);
});
