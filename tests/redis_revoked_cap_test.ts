/**
 * The Redis `celeriac.revoked` set keeps the 50,000 revocations that expire
 * last (Celery's `REVOKES_MAX`, what a worker remembers), not every one of
 * the last 3 hours (review 37: 7,798 after 13 minutes at 10 revokes/s, all
 * read at each worker start).
 */

import assert from "node:assert/strict";
import { openBroker } from "../protocol.ts";
import { REVOKED_KEPT } from "../src/broker/shared_state.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis revoked: the set keeps the REVOKED_KEPT revocations that expire last",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("revoked-cap");
  const broker = await openBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`);
  try {
    const base = Date.now() + 3_600_000;
    const extra = 10;
    const entries = Array.from({ length: REVOKED_KEPT + extra }, (_, i) => ({
      id: `r-${i}`,
      expiresAt: new Date(base + i * 10),
    }));
    await broker.addRevoked(entries.slice(0, 20_000));
    await broker.addRevoked(entries.slice(20_000));
    const ids = new Set((await broker.listRevoked()).map((e) => e.id));
    assert.equal(ids.size, REVOKED_KEPT);
    for (let i = 0; i < extra; i++) assert.ok(!ids.has(`r-${i}`), `r-${i} expires first`);
    assert.ok(ids.has(`r-${extra}`) && ids.has(`r-${REVOKED_KEPT + extra - 1}`));
  } finally {
    await broker.close();
    await deleteKeys(prefix);
  }
});
