/**
 * A beat store that cannot be reached names where its URL came from: the
 * app's `beatStore` option / `--beat-store`, or the broker's URL when no
 * beat store was given (and where that came from).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openAppScheduleStore } from "../protocol.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";

const NOWHERE = "redis://127.0.0.1:1/0";

async function sourceOf(app: Celery): Promise<string | undefined> {
  const err = await openAppScheduleStore(app).then(
    async (store) => {
      await store.close();
      throw new Error("the store opened");
    },
    (err: unknown) => err,
  );
  assert.ok(err instanceof BrokerConnectionError, String(err));
  return err.source;
}

Deno.test("beat store connection errors name the beatStore option, or the broker's URL", async () => {
  const given = await sourceOf(new Celery({ broker: "kv://:memory:", beatStore: NOWHERE }));
  assert.match(given ?? "", /beatStore option .*--beat-store/);
  const defaulted = await sourceOf(new Celery({ broker: NOWHERE }));
  assert.match(defaulted ?? "", /the broker's URL, as no beat store was given .*--beat-store/);
  assert.match(defaulted ?? "", /the app's broker option/);
});
