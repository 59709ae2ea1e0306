/**
 * `events` live view (review 11, finding 4): event fields are written with
 * their control characters escaped, so a task name or hostname from the
 * broker cannot clear the screen, colour it, set the title (OSC) or draw
 * rows of its own. `--dump` escapes them too (review 44; Celery 5.2.6's dump writes them raw).
 */

import assert from "node:assert/strict";
import { EventState } from "../src/client/event_state.ts";
import type { CeleryEvent } from "../src/protocol/events.ts";
import { render } from "../src/cli/events.ts";
import { EventDumper } from "../src/cli/evdump.ts";

const at = 1796645718.5;
// Matching control characters is the point here.
// deno-lint-ignore no-control-regex
const CONTROLS_BUT_LINE_BREAKS = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
const hostile = [
  {
    type: "task-received",
    hostname: "evil@h",
    timestamp: at,
    utcoffset: 0,
    pid: 1,
    clock: 1,
    uuid: "u-esc\x1b]0;id\x07",
    name: "\x1b[2J\x1b[31mEVIL\x1b[0m\r\nfake line",
    args: "\x1b]0;title\x07",
    kwargs: "{}",
  },
  {
    type: "worker-heartbeat",
    hostname: "\x1b[2Jh\nx\x9b2J",
    timestamp: at,
    utcoffset: 0,
    pid: 1,
    clock: 2,
    freq: 2,
    active: 0,
    processed: 0,
    sw_ident: "py\x1b[31m",
    sw_ver: "5.2.6",
  },
] as unknown as CeleryEvent[];

Deno.test("events live view: control characters from event fields are escaped", () => {
  const state = new EventState({ now: () => at });
  for (const e of hostile) state.event(e);
  const screen = render(state, 24);
  assert.doesNotMatch(screen, CONTROLS_BUT_LINE_BREAKS);
  const lines = screen.split("\n");
  // Title, blank, header and 2 workers (evil@h, the hostile name), blank, counts, header and 1
  // task: no forged row.
  assert.equal(lines.length, 9, screen);
  // The task column is cut at 40 characters.
  assert.match(screen, /\\x1b\[2J\\x1b\[31mEVIL\\x1b\[0m\\r\\nfake/);
  assert.match(screen, /\\x1b\[2Jh\\nx\\x9b2J/);
  assert.match(screen, /py\\x1b\[31m 5\.2\.6/);
});

Deno.test("events --dump: fields are written with their control characters escaped (Celery 5.2.6's dump writes them raw)", () => {
  const line = new EventDumper().line(hostile[0], at);
  assert.ok(!CONTROLS_BUT_LINE_BREAKS.test(line) && !line.includes("\n"), JSON.stringify(line));
  assert.ok(line.includes(String.raw`\x1b[2J\x1b[31mEVIL\x1b[0m\r\nfake line`), line);
});
