/**
 * A spoiled chord's claim whose reply is lost after the script ran (through
 * Sentinel or Cluster the whole join is then sent again during the
 * failover, guardRedis): the join sent again still reports the chord's
 * failure (the worker sends its errbacks and joins an outer chord), and
 * leaves no `.j` behind. Before, the join's ZADD re-created `.j`, found no
 * size and returned null: the FAILURE stood, the failure went unreported.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { guardRedis } from "../src/broker/redis_guard.ts";
import { type ChordMetas, GROUP_META_PREFIX, RedisChords } from "../src/backend/redis_chord.ts";
import type { ChordFailure } from "../src/backend/port.ts";
import { ProtocolError } from "../protocol.ts";
import { chordPart } from "./helpers/chord_keys.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** A URL guardRedis sends commands again for after a connection failure (never connected). */
const FAILOVER_URL = "sentinel://127.0.0.1:1/0?master_name=mymaster&failover_wait=5";

/** `client` whose first chord claim runs, then fails as a connection lost before its reply. */
function replyLostOnce(client: Redis): { client: Redis; claims: () => number } {
  let claims = 0;
  const lossy = new Proxy(client, {
    get(target, key) {
      if (key !== "celeriacChordClaim") return Reflect.get(target, key);
      return async (...args: unknown[]) => {
        // deno-lint-ignore no-explicit-any
        const reply = await (target as any).celeriacChordClaim(...args);
        if (++claims === 1) throw new Error("Connection is closed.");
        return reply;
      };
    },
  });
  return { client: lossy, claims: () => claims };
}

Deno.test({
  name: "redis chord claim whose reply was lost: the join sent again reports the chord's " +
    "failure once and leaves no .j",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("claim-resend");
  const r = await rawRedis();
  const { client, claims } = replyLostOnce(new Redis(REDIS_URL));
  const metas: ChordMetas = { key: (id) => `${p}celery-task-meta-${id}`, store: async () => {} };
  const chords = new RedisChords(client, p, 0, false, metas);
  const stem = `${p}${GROUP_META_PREFIX}g`;
  let asked = 0;
  const failure: ChordFailure = (err) => {
    asked++;
    const meta = JSON.stringify({ status: "FAILURE", result: err.message, task_id: "body" });
    return [{ taskId: "body", status: "FAILURE", meta }];
  };
  try {
    await r.set(`${stem}.s`, "lots");
    await assert.rejects(
      guardRedis(FAILOVER_URL, () => chords.partReturn(chordPart("g", 0), failure)),
      ProtocolError,
    );
    assert.equal(claims(), 2, "the claim was sent again");
    assert.equal(asked, 1);
    assert.equal(await r.exists(`${stem}.j`, `${stem}.s`, `${stem}.t`), 0, "no chord key left");
    assert.equal(JSON.parse((await r.get(`${p}celery-task-meta-body`))!).status, "FAILURE");
    // Another member, later: the chord is gone, it does not fail it again.
    assert.equal(await chords.partReturn(chordPart("g", 1), failure), null);
    await chords.cleanup("g");
    assert.equal(await r.exists(`${stem}.j`, `${stem}.c`), 0, "cleaned up");
  } finally {
    client.disconnect();
    await r.quit();
    await deleteKeys(p);
  }
});
