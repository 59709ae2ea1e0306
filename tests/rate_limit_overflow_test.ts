/**
 * A rate slower than one run per 24.8 days: the wait for the next token
 * is longer than a timer holds. The limiter must wait the longest a timer
 * holds and ask again then, not every millisecond (review 1, HIGH 1: a
 * `rate_limit` of "0.0001/h" made a worker send ~1,800 Redis commands a
 * second).
 */

import assert from "node:assert/strict";
import { LocalTokenBuckets, RateLimiter } from "../src/worker/rate_limit.ts";
import type { TokenRequest } from "../src/broker/port.ts";

for (const perSecond of [1e-9, 0.0001 / 3600]) {
  Deno.test(`rate limit ${perSecond}/s: held tasks ask for tokens once, not again and again`, async () => {
    const buckets = new LocalTokenBuckets();
    const asked: number[] = [];
    const started: string[] = [];
    const limiter = new RateLimiter<string>({
      acquire: (requests: readonly TokenRequest[]) => {
        asked.push(requests.length);
        return Promise.resolve(buckets.acquire(requests));
      },
      onReady: (ids) => started.push(...ids),
    });
    limiter.setRate("t.slow", perSecond);
    for (const id of ["a", "b", "c"]) limiter.submit("t.slow", id);
    // The old code's timer overflowed to 1 ms: hundreds of asks in this time.
    await new Promise((r) => setTimeout(r, 300));
    try {
      assert.deepEqual(started, ["a"]);
      assert.equal(limiter.size, 2);
      assert.deepEqual(asked, [1]);
    } finally {
      assert.deepEqual(limiter.drain(), ["b", "c"]);
    }
  });
}
