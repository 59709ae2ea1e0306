/**
 * Celery's `inspect objgraph|memsample|memdump` and `control
 * election|pool_restart` are sent, with the arguments Celery's command line
 * gives them, so that a Celery worker can be asked from Celeriac's command
 * line (a Celeriac worker answers them with an error). They were refused
 * before sending, exit 2.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runControl, runInspect } from "../src/cli/inspect.ts";

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
