/**
 * `call`'s send flags, as Celery's `celery call` has them: `-a/--args`,
 * `-k/--kwargs`, `--expires` (seconds or ISO), `--serializer`, `--exchange`,
 * `--routing-key`, each passed to `sendTask`; `--eta` without a zone is UTC
 * whatever the zone of the machine running `call` (it was read in local
 * time: under TZ=Europe/Berlin an eta six seconds ahead ran at once).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import type { ApplyOptions } from "../src/client/task_options.ts";
import { runCall } from "../src/cli/call.ts";
import { callSend } from "../src/cli/call_options.ts";
import { UsageError } from "../src/cli/exit_codes.ts";
import { parsePyDate } from "../src/protocol/time.ts";
import { withKvBroker } from "./helpers/kv_temp.ts";
import { runCli } from "./helpers/procs.ts";

/** `worker.ts ...args` with no broker or backend from the environment unless `env` sets one. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const env2 = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "", ...env };
  const r = await runCli(args, { env: env2 });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** The naive ISO text (no zone) of a UTC instant: `2030-01-01T12:00:00`. */
function naive(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

Deno.test("cli call --eta: a time without a zone is UTC, not the caller's local time", async () => {
  await withKvBroker("celeriac-call-eta-", async (url, app) => {
    // Due a second ago in UTC; read in Los Angeles time (UTC-8 or -7) it was hours ahead.
    const text = naive(Date.now() - 1000);
    const ran = await cli(["call", "t.add", "-b", url, "--eta", text], {
      TZ: "America/Los_Angeles",
    });
    assert.equal(ran.code, 0, ran.err);
    const broker = await app.broker();
    const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.ok(d, "the message is in the queue");
    assert.equal(parsePyDate(String(d.headers.eta)).toISOString(), `${text}.000Z`);
    await broker.ack([d]);
  });
});

Deno.test("cli call: -a/-k are --args/--kwargs, as in celery call", async () => {
  await withKvBroker("celeriac-call-ak-", async (url, app) => {
    const ran = await cli(["call", "t.add", "-b", url, "-a", "[2, 3]", "-k", '{"z": 1}']);
    assert.equal(ran.code, 0, ran.err);
    const broker = await app.broker();
    const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.ok(d, "the message is in the queue");
    const [args, kwargs] = JSON.parse(new TextDecoder().decode(d.body));
    assert.deepEqual([args, kwargs], [[2, 3], { z: 1 }]);
    await broker.ack([d]);
  });
});

Deno.test("cli call: -a/-k keep a big integer and a float literal exact, as celery call's json.loads", async () => {
  // 12345678901234567890 was sent as 1.2345678901234567e+19, 1.0 as 1 and 1e2 as 100:
  // a Python worker then computed with another number (or another type).
  await withKvBroker("celeriac-call-exact-", async (url, app) => {
    const ran = await cli([
      "call",
      "t.add",
      "-b",
      url,
      "-a",
      "[12345678901234567890, 1.0, 0.5]",
      "-k",
      '{"w": 1e2}',
    ]);
    assert.equal(ran.code, 0, ran.err);
    const broker = await app.broker();
    const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.ok(d, "the message is in the queue");
    const body = new TextDecoder().decode(d.body);
    assert.ok(body.startsWith('[[12345678901234567890, 1.0, 0.5], {"w": 100.0}, '), body);
    await broker.ack([d]);
  });
});

Deno.test("cli call: --expires, --serializer, --exchange, --routing-key reach sendTask", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: ApplyOptions[] = [];
  app.sendTask = (_name, _args, options = {}) => {
    sent.push(options);
    return Promise.resolve(app.asyncResult("11111111-2222-3333-4444-555555555555"));
  };
  try {
    const flags = { serializer: "msgpack", exchange: "billing", "routing-key": "invoices" };
    assert.equal(await runCall(app, "t.add", { ...flags, expires: "90" }), 0);
    assert.equal(await runCall(app, "t.add", { expires: "2030-01-01T12:00:00" }), 0);
    assert.equal(await runCall(app, "t.add", { expires: "2030-01-01T12:00:00+01:00" }), 0);
    assert.deepEqual(sent[0], {
      kwargs: {},
      expires: 90,
      serializer: "msgpack",
      exchange: "billing",
      routingKey: "invoices",
    });
    assert.equal((sent[1].expires as Date).toISOString(), "2030-01-01T12:00:00.000Z");
    assert.equal((sent[2].expires as Date).toISOString(), "2030-01-01T11:00:00.000Z");
  } finally {
    await app.close();
  }
});

Deno.test("cli call: a bad --expires, --eta or --serializer is a usage error", () => {
  for (
    const values of [
      { expires: "soon" },
      { expires: "" },
      { eta: "tomorrow" },
      { eta: "2030-13-01T00:00:00" },
      { serializer: "pickle" },
      { exchange: "" },
    ]
  ) {
    assert.throws(() => callSend(values), UsageError, JSON.stringify(values));
  }
});

Deno.test("cli call: an unknown flag is matched against call's own flags only", async () => {
  // `-a` answered "did you mean --at?" (schedule add's); `--evry` got schedule's --every.
  const [typo, foreign] = await Promise.all([
    cli(["call", "t.add", "-b", "kv://:memory:", "--kwarg", "{}"]),
    cli(["call", "t.add", "-b", "kv://:memory:", "--evry", "10"]),
  ]);
  assert.equal(typo.code, 2, typo.err);
  assert.match(typo.err, /^error: unknown option --kwarg \(did you mean --kwargs\?\)/);
  assert.equal(foreign.code, 2, foreign.err);
  assert.match(foreign.err, /^error: unknown option --evry; run with --help/);
});
