/**
 * `events --dump` writes the lines Celery 5.2.6's own dumper writes for the
 * same events: the events Celery published (tests/fixtures), and a few
 * made here for quoting, nesting and timestamps, are fed to both
 * `celery.events.dumper.Dumper` and {@link EventDumper} and compared.
 */

import assert from "node:assert/strict";
import { EventDumper, pyStr, pyUtcTimestamp } from "../src/cli/evdump.ts";
import type { CeleryEvent } from "../src/protocol/events.ts";
import { PYTHON } from "./helpers/procs.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const FIXTURE = new URL("./fixtures/celery-5.2/redis/events_sample.json", import.meta.url);

/** Each event of the fixture's messages (a body holds one event or a list of them), as JSON. */
async function celeryEvents(): Promise<string[]> {
  const { messages } = JSON.parse(await Deno.readTextFile(FIXTURE));
  return messages.flatMap((m: { raw: string }) => {
    const body = JSON.parse(atob(JSON.parse(m.raw).body));
    return (Array.isArray(body) ? body : [body]).map((e) => JSON.stringify(e));
  });
}

const MADE = [
  {
    type: "task-received",
    hostname: "celeriac@h",
    timestamp: 1795490300,
    uuid: "u-1",
    name: "tasks.echo",
    args: "('it\\'s', \"x\")",
    kwargs: "{}",
    eta: null,
    retries: 0,
  },
  {
    type: "task-succeeded",
    hostname: "celeriac@h",
    timestamp: 1795490300.5,
    uuid: "u-1",
    result: "['it\\'s', 'x']",
    runtime: 0.25,
  },
  { type: "task-started", hostname: "celeriac@h", timestamp: 1795490301.000001, uuid: "unseen" },
  {
    type: "worker-custom",
    hostname: "celeriac@h",
    timestamp: 1795490302.123456,
    nested: { "it's": [true, false, null, "a\nb", 'say "hi"'], n: 1.5 },
  },
  { type: "worker-offline", hostname: "celeriac@h", timestamp: 1795490303 },
].map((e) => JSON.stringify(e));

/**
 * What Celery's Dumper prints for each of these events (task names are
 * remembered across them, in its module-level cache). JSON.parse cannot tell 2.0
 * from 2, so whole floats are read as ints on both sides (Celery prints a
 * Python worker's `freq=2.0`, Celeriac `freq=2`).
 */
async function celeryLines(events: string[]): Promise<string[]> {
  const script = `
import io, json, sys
from celery.events.dumper import Dumper
whole = lambda s: int(float(s)) if float(s).is_integer() else float(s)
lines = []
for text in json.load(sys.stdin):
    out = io.StringIO()
    Dumper(out=out).on_event(json.loads(text, parse_float=whole))
    lines.append(out.getvalue().removesuffix("\\n"))
json.dump(lines, sys.stdout)
`;
  const child = new Deno.Command(PYTHON, {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(events)));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "events --dump: the same lines as Celery 5.2.6's dumper, for Celery's events and others",
  ignore: WITHOUT_CELERY,
}, async () => {
  const events = [...await celeryEvents(), ...MADE];
  const expected = await celeryLines(events);
  const dumper = new EventDumper();
  const lines = events.map((text) => dumper.line(JSON.parse(text) as CeleryEvent));
  assert.equal(lines.length, expected.length);
  for (const [i, line] of lines.entries()) assert.equal(line, expected[i], events[i]);
});

Deno.test("events --dump: Python's str() of values and of UTC timestamps", () => {
  assert.equal(pyStr(null), "None");
  assert.equal(pyStr({ a: [1, null, "x", true] }), "{'a': [1, None, 'x', True]}");
  assert.equal(pyStr(["it's"]), `["it's"]`);
  assert.equal(pyStr("plain"), "plain");
  assert.equal(pyUtcTimestamp(1767225600), "2026-01-01 00:00:00");
  assert.equal(pyUtcTimestamp(1767225600.25), "2026-01-01 00:00:00.250000");
  assert.equal(pyUtcTimestamp(1767225600.9999996), "2026-01-01 00:00:01");
});
