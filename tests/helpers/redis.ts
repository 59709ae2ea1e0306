/** Redis helpers for tests: isolated key prefixes and clean-up. */

import { Redis } from "ioredis";

/** The Redis server tests use (CELERIAC_TEST_REDIS overrides). */
export const REDIS_URL = Deno.env.get("CELERIAC_TEST_REDIS") ?? "redis://127.0.0.1:6379/0";

/** A key prefix unique to this test run. */
export function uniquePrefix(label: string): string {
  return `celeriac-test-${label}-${crypto.randomUUID().slice(0, 8)}:`;
}

/** Delete every key that starts with `prefix`. */
export async function deleteKeys(prefix: string, url: string = REDIS_URL): Promise<number> {
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  let cursor = "0";
  let n = 0;
  do {
    const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) n += await r.del(...keys);
  } while (cursor !== "0");
  await r.quit();
  return n;
}

/** A raw client for assertions on what is stored. */
export async function rawRedis(url: string = REDIS_URL): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  return r;
}

/** Wait until the Redis list `key` has at least `count` entries; resolves with them. */
export async function waitForList(
  key: string,
  count: number,
  timeoutMs: number,
  url: string = REDIS_URL,
): Promise<string[]> {
  const redis = await rawRedis(url);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await redis.lrange(key, 0, -1);
      if (got.length >= count) return got;
      if (Date.now() > deadline) throw new Error(`${key} has ${got.length} of ${count} entries`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await redis.quit();
  }
}

/** Delete the Celery result keys (`celery-task-meta-<id>`) of these task ids. */
export async function deleteResults(
  ids: readonly string[],
  url: string = REDIS_URL,
): Promise<void> {
  if (ids.length === 0) return;
  const redis = await rawRedis(url);
  try {
    await redis.del(...ids.map((id) => `celery-task-meta-${id}`));
  } finally {
    await redis.quit();
  }
}
