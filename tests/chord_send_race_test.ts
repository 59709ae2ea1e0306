/**
 * The Redis chord's `.b` mark (the member that sends the body): the
 * completing member's send decision is taken in one script with the count
 * check and the members' read, so a member whose decision comes after
 * another member's redelivery sent the body and cleaned up gets null, not
 * `[]` (the body sent a second time with no results). A spoiled chord's
 * claim deletes `.b` with the chord's other keys.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { GROUP_META_PREFIX, RedisChords } from "../src/backend/redis_chord.ts";
import type { ChordFailure } from "../src/backend/port.ts";
import { ProtocolError } from "../protocol.ts";
import { chordPart } from "./helpers/chord_keys.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/**
 * `client` whose chord scripts (`celeriacChord*`) called with `taskId` among
 * their arguments wait until `release` resolves.
 */
function holdScripts(client: Redis, taskId: string, release: Promise<void>): Redis {
  return new Proxy(client, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof key !== "string" || !key.startsWith("celeriacChord")) return value;
      return async (...args: unknown[]) => {
        if (args.includes(taskId)) await release;
        return await value.apply(target, args);
      };
    },
  });
}

Deno.test({
  name: "redis chord .b: the completing member whose send decision comes after another " +
    "member's redelivery sent the body and cleaned up gets null, and leaves no .b",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("chord-send-race");
  const r = await rawRedis();
  const client = new Redis(REDIS_URL);
  let release = () => {};
  const released = new Promise<void>((ok) => release = ok);
  const b = chordPart("g", 1);
  const chords = new RedisChords(holdScripts(client, b.taskId, released), p, 3600, false, {
    key: (id) => `${p}celery-task-meta-${id}`,
    store: async () => {},
  });
  const stem = `${p}${GROUP_META_PREFIX}g`;
  try {
    await chords.setChordSize("g", 2);
    const a = chordPart("g", 0);
    assert.equal(await chords.partReturn(a), null);
    // b's join completes the count; its send decision is held back.
    const bJoin = chords.partReturn(b);
    while (await r.zcard(`${stem}.j`) < 2) await new Promise((ok) => setTimeout(ok, 5));
    // a is redelivered: it joins again, gets both members, sends the body and cleans up.
    const again = await chords.partReturn({ ...a, again: true });
    assert.deepEqual(again?.map((m) => m.taskId), [a.taskId, b.taskId]);
    await chords.cleanup("g");
    release();
    assert.equal(await bJoin, null, "the body was sent already");
    assert.equal(await r.exists(`${stem}.b`, `${stem}.j`), 0, "no .b or .j left");
  } finally {
    release();
    client.disconnect();
    await r.quit();
    await deleteKeys(p);
  }
});

Deno.test({
  name: "redis chord .b: a spoiled chord's claim deletes .b with the chord's keys",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("chord-send-claim");
  const r = await rawRedis();
  const client = new Redis(REDIS_URL);
  const chords = new RedisChords(client, p, 0, false, {
    key: (id) => `${p}celery-task-meta-${id}`,
    store: async () => {},
  });
  const stem = `${p}${GROUP_META_PREFIX}g`;
  const failure: ChordFailure = (err) => [{
    taskId: "body",
    status: "FAILURE",
    meta: JSON.stringify({ status: "FAILURE", result: err.message, task_id: "body" }),
  }];
  try {
    await r.set(`${stem}.b`, "member-9");
    await r.set(`${stem}.s`, "lots");
    await assert.rejects(chords.partReturn(chordPart("g", 0), failure), ProtocolError);
    assert.equal(await r.exists(`${stem}.j`, `${stem}.s`, `${stem}.b`), 0, "no chord key left");
  } finally {
    client.disconnect();
    await r.quit();
    await deleteKeys(p);
  }
});
