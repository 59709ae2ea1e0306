/**
 * A call naming a routing key without an exchange goes to its queue, as in
 * Celery; Celeriac once sent it to a queue named by the key, so it warns,
 * once per key, saying where the task goes and what to pass instead.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

Deno.test("routing: a routingKey without an exchange warns once per key, naming the queue it goes to", async () => {
  const records = await captureLogs("warning", ["celeriac", "routing"]);
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const add = app.task("lrk.add", (a: number, b: number) => a + b);
    for (let i = 0; i < 3; i++) await add.applyAsync([1, 2], { routingKey: "lrk-one" });
    await add.applyAsync([1, 2], { routingKey: "lrk-two", queue: "lrk-q" });
    await add.applyAsync([1, 2], { routingKey: "lrk-three", exchange: "lrk-ex" });
    await add.applyAsync([1, 2], { queue: "lrk-q" });
    await new Promise((r) => setTimeout(r, 0));
    const lines = records.map(logLine);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(
      lines[0],
      /routingKey "lrk-one" without an exchange .* queue "celery"\. .*queue: "lrk-one"/,
    );
    assert.match(lines[1], /routingKey "lrk-two" without an exchange .* queue "lrk-q"\./);
  } finally {
    await app.close();
    await reset();
  }
});
