// deno-lint-ignore-file no-console
/**
 * `report` prints each worker's `{"ok": text}` as Celery's does, and any
 * other reply a node on the broker sends (null, an error, a dict without
 * `ok`, a number) as `inspect` shows it, instead of crashing on null
 * ("Cannot read properties of null (reading 'ok')", exit 70) or printing
 * `undefined`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { encodeControlReply, PIDBOX_EXCHANGE, PIDBOX_REPLY_EXCHANGE } from "../protocol.ts";
import { runReport } from "../src/cli/inspect.ts";

const REPLIES: Record<string, unknown> = {
  "null@x": null,
  "noOk@x": { n: 1 },
  "error@x": { error: "KeyError('report')" },
  "number@x": 42,
  "good@x": { ok: "software -> celery:5.2.6" },
};

Deno.test("cli report: replies that are no report are shown, not crashed on or printed as undefined", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const broker = await app.broker();
  const stop = new AbortController();
  await broker.subscribe(PIDBOX_EXCHANGE, (m) => {
    const req = JSON.parse(new TextDecoder().decode(m.body));
    const to = { exchange: PIDBOX_REPLY_EXCHANGE, routingKey: req.reply_to.routing_key };
    for (const [node, reply] of Object.entries(REPLIES)) {
      broker.publish(encodeControlReply(node, reply, { ticket: req.ticket, clock: 1 }), to);
    }
  }, { signal: stop.signal, queue: "fake@x.celery.pidbox" });
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  let code: number;
  try {
    code = await runReport(app, { timeout: "1" });
  } finally {
    console.log = log;
    stop.abort();
    await app.close();
  }
  assert.equal(code, 0);
  const out = lines.slice(1).join("\n");
  assert.doesNotMatch(out, /undefined/);
  for (
    const expected of [
      "->  null@x:\n    null",
      '->  noOk@x:\n    {\n      "n": 1\n    }',
      "->  error@x:\n    error: KeyError('report')",
      "->  number@x:\n    42",
      "->  good@x:software -> celery:5.2.6",
    ]
  ) assert.ok(out.includes(expected), `${JSON.stringify(expected)} in:\n${out}`);
});
