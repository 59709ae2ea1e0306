/**
 * What the chord-key tests share: a member's part of a chord, and a Redis
 * result backend under a key prefix of its own beside a raw client.
 *
 * @module
 */

import { openRedisBackend } from "../../src/backend/redis.ts";
import { GROUP_META_PREFIX } from "../../src/backend/redis_chord.ts";
import type { ChordPart } from "../../src/backend/port.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./redis.ts";

/**
 * Member `groupIndex` of chord `groupId`, succeeded with result `1`.
 *
 * @example
 * ```ts ignore
 * await backend.chordPartReturn(chordPart("g", 1));
 * ```
 */
export const chordPart = (groupId: string, groupIndex = 0): ChordPart => ({
  groupId,
  groupIndex,
  taskId: `member-${groupIndex}`,
  state: "SUCCESS",
  resultJson: "1",
});

/**
 * A Redis result backend under a key prefix of its own (made from `label`) and a raw client;
 * `stem(g)` is group `g`'s key stem under that prefix. Both closed and the keys deleted after
 * `fn`.
 *
 * @example
 * ```ts ignore
 * await withChordBackend("my-test", async (backend, r, stem) => {
 *   await r.set(stem("g") + ".s", "lots");
 * });
 * ```
 */
export async function withChordBackend(
  label: string,
  fn: (
    backend: Awaited<ReturnType<typeof openRedisBackend>>,
    r: Awaited<ReturnType<typeof rawRedis>>,
    stem: (g: string) => string,
  ) => Promise<void>,
): Promise<void> {
  const own = uniquePrefix(label);
  const backend = await openRedisBackend(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(own)}`,
  );
  const r = await rawRedis();
  try {
    await fn(backend, r, (g) => `${own}${GROUP_META_PREFIX}${g}`);
  } finally {
    await backend.close();
    await r.quit();
    await deleteKeys(own);
  }
}
