/**
 * `events --dump` writes the lines `celery events --dump` (Celery 5.2.6)
 * writes for the same events: the events Celery published
 * (tests/fixtures), and a few made here for quoting, nesting, timestamps,
 * floats and clocks, are fed to both Celery's receiver and dumper
 * (`EventReceiver.event_from_message`, `Dumper.on_event`) and
 * {@link EventDumper}, and compared.
 */

import assert from "node:assert/strict";
import { EventDumper, pyStr, pyUtcTimestamp } from "../src/cli/evdump.ts";
import type { CeleryEvent } from "../src/protocol/events.ts";
import { pyJsonLoads } from "../src/protocol/json_decode.ts";
import { PYTHON } from "./helpers/procs.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const FIXTURE = new URL("./fixtures/celery-5.2/redis/events_sample.json", import.meta.url);

/** The fixture's message bodies (each one event or a list of them), as Celery wrote them. */
async function celeryBodies(): Promise<string[]> {
  const { messages } = JSON.parse(await Deno.readTextFile(FIXTURE));
  return messages.map((m: { raw: string }) => atob(JSON.parse(m.raw).body));
}

/**
 * Bodies made here, as JSON text (whole floats keep their `.0`): quoting,
 * nesting, timestamps, floats, a heartbeat the `heartbeat` control command
 * asks for (its `freq` an int), a client's `task-sent` (the receiver puts
 * its own clock on it), a sender two hours east (`utcoffset` -2), an event
 * without a clock.
 */
const MADE = [
  {
    type: "task-received",
    hostname: "celeriac@h",
    clock: 200,
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
    clock: 201,
    timestamp: 1795490300.5,
    uuid: "u-1",
    result: "['it\\'s', 'x']",
    runtime: 0.25,
  },
  {
    type: "task-started",
    hostname: "celeriac@h",
    clock: 3,
    timestamp: 1795490301.000001,
    uuid: "x",
  },
  {
    type: "worker-custom",
    hostname: "celeriac@h",
    timestamp: 1795490302.123456,
    nested: { "it's": [true, false, null, "a\nb", 'say "hi"'], n: 1.5 },
  },
  { type: "worker-offline", hostname: "celeriac@h", clock: 204, timestamp: 1795490303 },
].map((e) => JSON.stringify(e)).concat([
  `{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 205, "freq": 2.0, "active": 0, ` +
  `"processed": 3, "loadavg": [0.0, 1.0, 0.25], "sw_ident": "celeriac", "sw_ver": "0.1.0", ` +
  `"sw_sys": "Linux", "timestamp": 1795490304.0, "type": "worker-heartbeat"}`,
  `{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 206, "freq": 5, ` +
  `"sw_ident": "celeriac", "sw_ver": "0.1.0", "sw_sys": "Linux", "timestamp": 1795490305.5, ` +
  `"type": "worker-heartbeat"}`,
  `[{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 207, "uuid": "u-2", ` +
  `"result": "None", "runtime": 0.0, "timestamp": 1795490306.0, "type": "task-succeeded"}, ` +
  `{"hostname": "celeriac@h", "utcoffset": -2, "pid": 7, "clock": 208, "uuid": "u-3", ` +
  `"result": "1", "runtime": 1e-05, "timestamp": 1795490306.25, "type": "task-succeeded"}]`,
  `{"hostname": "gen9@vm", "utcoffset": 0, "pid": 9, "clock": 1, "uuid": "u-4", ` +
  `"root_id": "u-4", "parent_id": null, "name": "tasks.add", "args": "(1, 2)", "kwargs": "{}", ` +
  `"retries": 0, "eta": null, "expires": null, "queue": "celery", "exchange": "", ` +
  `"routing_key": "celery", "timestamp": 1795490307.0, "type": "task-sent"}`,
]);

/** When the events are received: Celery's receiver adds it to each (`local_received`). */
const RECEIVED = 1795490400.123456;

/**
 * What `celery events --dump` prints for the events of these bodies: each
 * goes through Celery's receiver (`event_from_message`, its clock shared
 * by them all, `local_received` = {@link RECEIVED}) to its dumper (task
 * names remembered across them, in its module-level cache).
 */
async function celeryLines(bodies: string[]): Promise<string[]> {
  const script = `
import io, json, sys
from celery import Celery
from celery.events.dumper import Dumper
from celery.events.receiver import EventReceiver
request = json.load(sys.stdin)
receiver = EventReceiver(None, app=Celery(set_as_current=False))
lines = []
for text in request["bodies"]:
    body = json.loads(text)
    for event in body if isinstance(body, list) else [body]:
        out = io.StringIO()
        _, ev = receiver.event_from_message(event, now=lambda: request["received"])
        Dumper(out=out).on_event(ev)
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
  await writer.write(new TextEncoder().encode(JSON.stringify({ bodies, received: RECEIVED })));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "events --dump: the same lines as `celery events --dump`, for Celery's events and others",
  ignore: WITHOUT_CELERY,
}, async () => {
  const bodies = [...await celeryBodies(), ...MADE];
  const expected = await celeryLines(bodies);
  const dumper = new EventDumper();
  const events = bodies.flatMap((text) => {
    const body = pyJsonLoads(text) as CeleryEvent | CeleryEvent[];
    return Array.isArray(body) ? body : [body];
  });
  const lines = events.map((e) => dumper.line(e, RECEIVED));
  assert.equal(lines.length, expected.length);
  for (const [i, line] of lines.entries()) {
    assert.equal(line, expected[i], JSON.stringify(events[i]));
  }
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

Deno.test("events --dump: an event's control and format characters are escaped, as the TUI escapes them", () => {
  // A forged hostname wrote a red second line that looked like another node's heartbeat.
  const dumper = new EventDumper();
  const heartbeat = dumper.line({
    type: "worker-heartbeat",
    hostname: "ansi\x1b[31mRED\nfake@y [2026-12-07 23:00:00.000000] heartbeat",
    timestamp: 1795490300,
    clock: 1,
    freq: 2,
  } as CeleryEvent, 1795490300);
  assert.equal(heartbeat.split("\n").length, 1);
  assert.ok(!heartbeat.includes("\x1b"));
  assert.match(heartbeat, /^ansi\\x1b\[31mRED\\nfake@y \[/);
  const task = dumper.line({
    type: "task-received",
    hostname: "w@h",
    timestamp: 1795490300,
    clock: 2,
    uuid: "u-9",
    name: "t.\u202eppa\nx",
    args: "('\x9b2J',)",
    kwargs: "{}",
  } as CeleryEvent, 1795490300);
  assert.equal(task.split("\n").length, 1);
  assert.ok(
    ![...task].some((c) => c < " " || (c >= "\x7f" && c <= "\x9f") || c === "\u202e"),
    task,
  );
  assert.ok(task.includes("t.\\u202eppa\\nx"), task);
});
