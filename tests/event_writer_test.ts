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

Deno.test("event writer: repeating fields copied as the bytes written last are Celery's bytes as their values change", () => {
  const keys = ["uuid", "name", "args", "retries", "runtime", "eta"];
  const shape = new EventShape("task-x", keys, ["name", "args", "retries", "runtime", "eta"]);
  const plain = new EventShape("task-x", keys);
  const fresh = (s: string) => JSON.parse(JSON.stringify(s)) as string;
  // Each row against the one before: same values (copied), one value changed
  // (written again), 0 and -0, 1 and 1.0, escapes, undefined, other types.
  const rows: unknown[][] = [
    ["a", "t", "()", 0, 1, null],
    ["b", fresh("t"), fresh("()"), 0, 1, null],
    ["c", "t", "()", -0, 1, null],
    ["d", "t", "()", -0, 1, null],
    ["e", "t", "()", 0, 1.5, null],
    ["f", "t", '("q",)', 0, 1.5, null],
    ["g", "t\u00e9", "()", 0, 1.5, null],
    ["h", "t\u00e9", "()", 0, 1.5, null],
    ["i", "t", "()", 0, 1.5, undefined],
    ["j", "t", "()", 0, 1.5, undefined],
    ["k", "t", "()", 0, 1.5, false],
    ["l", "t", "()", 0, 1.5, "0"],
    ["m", "t", "()", 0, 1.5, { at: [1] }],
    ["n", "t", "()", 0, 1.5, "0"],
    ["o", "t", "()", NaN, 1.5, "0"],
    ["p", "t", "()", NaN, 1.5, "0"],
  ];
  const ours = new EventListWriter(sender);
  const theirs = new EventListWriter(sender);
  for (const [i, row] of rows.entries()) {
    const stamp = 1_700_000_000_000 + Math.floor(i / 3);
    ours.addValues(shape, row, i, stamp);
    theirs.addValues(plain, row, i, stamp);
    const expected = text(theirs.take());
    assert.equal(text(ours.take()), expected, `row ${i}`);
    assert.equal(
      expected,
      text(
        encodeEventMessage(
          [makeEvent("task-x" as never, Object.fromEntries(keys.map((k, j) => [k, row[j]])), {
            ...sender,
            clock: i,
            timestamp: stamp,
          })],
          "w@h",
        ).body,
      ),
      `row ${i}`,
    );
  }
  assert.throws(() => new EventShape("task-x", keys, ["nope"]), RangeError);
});

Deno.test("event writer: take(max, maxBytes) stops before the event that would pass maxBytes, at least one event", () => {
  const writer = new EventListWriter(sender);
  for (let i = 0; i < 400; i++) writer.addValues(RECEIVED, values(i), clock(i), at(i));
  const cap = 20_000;
  const lists: Uint8Array[] = [];
  let from = 0;
  while (writer.length > 0) {
    const list = writer.take(500, cap);
    const n = JSON.parse(text(list)).length;
    assert.equal(text(list), expected(from, from + n), "Celery's bytes for the events taken");
    assert.ok(list.length <= cap, `${list.length} bytes, over ${cap}`);
    if (writer.length > 0) {
      const more = expected(from, from + n + 1).length;
      assert.ok(more > cap, "one more event would not have fit");
    }
    from += n;
    lists.push(list);
  }
  assert.equal(from, 400);
  assert.ok(lists.length > 3, `${lists.length} lists`);
  writer.addValues(RECEIVED, values(299), clock(1), at(1));
  writer.addValues(RECEIVED, values(1), clock(1), at(1));
  const big = writer.take(500, 100);
  assert.equal(JSON.parse(text(big)).length, 1, "one event bigger than maxBytes, alone");
  assert.ok(big.length > 100);
  assert.equal(writer.length, 1);
});
