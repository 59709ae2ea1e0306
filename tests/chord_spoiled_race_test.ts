/**
 * A chord whose `.j` another tool spoiled is failed once, even when a
 * member's ZADD re-creates `.j` between two claims (reviewer finding on
 * 24f08ea6): members A and B read WRONGTYPE; A claims the failure and
 * deletes the keys; member C joins, and its ZADD makes a new, valid `.j`;
 * then B claims. Before the fix B's DEL removed C's `.j`, returned 1, and B
 * failed the chord a second time (two ProtocolErrors, two "Chord failed"
 * lines, two stored FAILUREs).
 *
 * B's connection goes through a proxy that holds what B sends after its
 * join transaction (its claim) until A and C are done, so the order is
 * fixed, not timed.
 */

import assert from "node:assert/strict";
import { openRedisBackend } from "../src/backend/redis.ts";
import { GROUP_META_PREFIX } from "../src/backend/redis_chord.ts";
import { ProtocolError } from "../protocol.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { chordPart } from "./helpers/chord_keys.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

/**
 * A proxy to the test Redis that, on each connection, holds the first chunk
 * sent after a chunk with EXEC until `release()`; `held` resolves when it
 * holds one.
 */
function gateAfterExec() {
  const target = new URL(REDIS_URL);
  const released = Promise.withResolvers<void>();
  const held = Promise.withResolvers<void>();
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port) }, {
    filter: () => {
      let gate = true;
      let execSent = false;
      return async (chunk, upstream) => {
        if (!upstream || !gate) return true;
        if (execSent) {
          held.resolve();
          await released.promise;
          gate = false;
          return true;
        }
        if (/\r\nexec\r\n/i.test(new TextDecoder().decode(chunk))) execSent = true;
        return true;
      };
    },
  });
  return {
    port: proxy.port,
    held: held.promise,
    release: () => released.resolve(),
    close() {
      released.resolve();
      return proxy.close();
    },
  };
}

Deno.test({
  name:
    "redis chord with a spoiled .j: a member's claim after another member re-created .j does not fail the chord again",
  ignore: WITHOUT_REDIS,
}, async () => {
  const own = uniquePrefix("chord-spoiled-race");
  const q = `?global_keyprefix=${encodeURIComponent(own)}`;
  const gate = gateAfterExec();
  const url = new URL(REDIS_URL);
  const direct = await openRedisBackend(`${REDIS_URL}${q}`);
  url.host = `127.0.0.1:${gate.port}`;
  const proxied = await openRedisBackend(`${url}${q}`);
  const r = await rawRedis();
  const stem = `${own}${GROUP_META_PREFIX}g`;
  const outcome = (p: Promise<unknown>) =>
    p.then(
      (v) => ({ value: v }),
      (e) => ({ error: e as Error }),
    );
  try {
    await r.set(stem + ".j", "a string");
    await r.set(stem + ".s", "3");
    const b = outcome(proxied.chordPartReturn!(chordPart("g", 1))); // reads WRONGTYPE, claim held
    await gate.held;
    const a = await outcome(direct.chordPartReturn!(chordPart("g", 0))); // reads WRONGTYPE, claims
    assert.ok("error" in a && a.error instanceof ProtocolError, JSON.stringify(a));
    assert.match(a.error.message, /holds another type.*WRONGTYPE/);
    const c = await outcome(direct.chordPartReturn!(chordPart("g", 2))); // ZADD re-creates .j
    assert.deepEqual(c, { value: null });
    assert.equal(await r.type(stem + ".j"), "zset");
    gate.release();
    const bDone = await b;
    assert.deepEqual(
      "error" in bDone ? `${bDone.error.name}: ${bDone.error.message}` : bDone,
      { value: null },
    );
    // B left C's record alone: only the member that claimed the failure deletes keys.
    assert.deepEqual(await r.zrange(stem + ".j", "0", "-1"), [
      '[1, "member-2", "SUCCESS", 1]',
    ]);
  } finally {
    await r.quit();
    await direct.close();
    await proxied.close();
    await gate.close();
    await deleteKeys(own);
  }
});
