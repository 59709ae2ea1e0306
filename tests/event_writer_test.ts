/**
 * EventListWriter past its first buffer: lists larger than it, takes in
 * turn while events keep coming (the taken ones dropped from the front when
 * the buffer fills), and numbers its digit writer leaves to `pyJsonScalar`.
 */

import assert from "node:assert/strict";
import { encodeEventMessage, makeEvent } from "../protocol.ts";
import { EventListWriter, EventShape } from "../src/protocol/event_writer.ts";

const RECEIVED = new EventShape("task-received", ["uuid", "name", "args", "retries", "eta"]);
const sender = { hostname: "w@h", pid: 7 };
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The list `encodeEventMessage` writes for events `from` to `to` (exclusive) of {@link values}. */
function expected(from: number, to: number): string {
  const events = [];
  for (let i = from; i < to; i++) {
    const [uuid, name, args, retries, eta] = values(i);
    events.push(
      makeEvent("task-received", { uuid, name, args, retries, eta }, {
        ...sender,
        clock: clock(i),
        timestamp: at(i),
      }),
    );
  }
  return text(encodeEventMessage(events, "w@h").body);
}

function values(i: number): [string, string, string, number, string | null] {
  return [`id-${i}-${"x".repeat(i % 300)}`, "t\u00e9", `(${i},)`, i % 3 === 0 ? -0 : i, null];
}
const clock = (i: number) => i % 7 === 0 ? 2 ** 40 + i : i;
const at = (i: number) => 1_700_000_000_000 + i * 0.5;

Deno.test("event writer: lists past its first buffer, and takes in turn between adds, are Celery's bytes", () => {
  const writer = new EventListWriter(sender);
  for (let i = 0; i < 2000; i++) writer.addValues(RECEIVED, values(i), clock(i), at(i));
  const whole = text(writer.take());
  assert.ok(whole.length > 64 * 1024, "the list outgrew the first buffer");
  assert.equal(whole, expected(0, 2000));
  // Takes of 100 while adding: the events left are moved to the front as the buffer fills.
  let added = 0;
  let taken = 0;
  for (let round = 0; round < 30; round++) {
    for (let k = 0; k < 150; k++, added++) {
      writer.addValues(RECEIVED, values(added), clock(added), at(added));
    }
    const list = text(writer.take(100));
    assert.equal(list, expected(taken, taken + 100), `round ${round}`);
    taken += 100;
    assert.equal(writer.length, added - taken);
  }
  assert.equal(text(writer.take()), expected(taken, added));
  assert.equal(writer.length, 0);
  assert.equal(text(writer.take()), "[]");
});
