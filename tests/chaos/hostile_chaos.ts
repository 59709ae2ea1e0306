/**
 * Chaos: a seeded corpus of hostile messages (random bytes, truncated JSON,
 * bad base64, wrong types, unknown tasks, pickle/yaml, 1 MB headers,
 * nesting 10,000 deep, null bytes, bad ETAs and expiry, huge time limits,
 * reused and non-UTF-8 delivery tags, malformed callbacks and chain steps,
 * compressed bombs of each codec, compressed garbage, unknown compressions,
 * ...) pushed into a queue, then 100 valid tasks. The worker process must
 * stay alive, run the valid tasks, and end every hostile message parked
 * with a reason or with a stored state — nothing left in the queue or
 * unacknowledged; those whose reason is known are parked with it (a bomb
 * with the decompression limit, garbage as corrupt). CHAOS_HOSTILE_N sets the corpus size (default 2,000);
 * CHAOS_SEED replays a run. Run by `deno task test:chaos` (not by `deno task test`).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Celery } from "../../mod.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import { WITHOUT_REDIS } from "../helpers/services.ts";
import { alive, chaosSeed, notDone, startWorker, statesOf, waitUntil } from "./helpers.ts";
import { hostileMessages } from "./hostile.ts";
import { report } from "../helpers/report.ts";

Deno.test({
  name: "chaos: hostile messages never kill or stall the worker, and none is silently dropped",
  ignore: WITHOUT_REDIS,
}, async () => {
  const seed = chaosSeed("hostile");
  const n = Number(Deno.env.get("CHAOS_HOSTILE_N") ?? 2000);
  const prefix = uniquePrefix("chaos-hostile");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `hostile-${crypto.randomUUID().slice(0, 8)}`;
  const redis = await rawRedis();
  const hostile = hostileMessages(seed, n, queue);
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = startWorker("hostile worker", [
    "-b",
    url,
    "--backend",
    url,
    "-Q",
    queue,
    "-c",
    "1",
    "--loglevel",
    "ERROR",
    "--max-decompressed-size",
    "1M",
  ]);
  try {
    for (let i = 0; i < hostile.length; i += 200) {
      await redis.lpush(
        prefix + queue,
        ...hostile.slice(i, i + 200).map((h) => Buffer.from(h.raw)),
      );
    }
    const valid: string[] = [];
    for (let i = 0; i < 100; i++) valid.push((await client.remoteTask("chaos.echo").delay(i)).id);
    const withId = hostile.filter((h) => h.id !== null).map((h) => h.id!);
    const t0 = Date.now();
    await waitUntil(
      "every valid task and every hostile message with an id has a state",
      async () => {
        if (!(await alive(worker))) {
          throw new Error(`the worker died:\n${worker.output.slice(-3000)}`);
        }
        return notDone(await statesOf(redis, prefix, [...valid, ...withId])).length === 0;
      },
      180_000,
    );
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(await alive(worker), "the worker is alive");
    const states = await statesOf(redis, prefix, [...valid, ...withId]);
    for (const id of valid) assert.equal(states.get(id), "SUCCESS", `valid task ${id}`);
    const wrong = hostile.filter((h) =>
      h.id !== null && (h.expect === "success") !== (states.get(h.id) === "SUCCESS")
    ).map((h) => `${h.kind}: ${states.get(h.id!)}`);
    assert.deepEqual(wrong, [], `seed ${seed}: hostile messages with the wrong outcome`);
    const mustPark = hostile.filter((h) => h.expect === "parked").length;
    const mayPark = mustPark + hostile.filter((h) => h.expect === "failure").length;
    await waitUntil(
      "the queue and unacked are empty",
      async () =>
        (await redis.llen(prefix + queue)) === 0 && (await redis.hlen(prefix + "unacked")) === 0,
      20_000,
    );
    const parked = await redis.llen(prefix + "celeriac.parked");
    assert.ok(
      parked >= mustPark && parked <= mayPark,
      `seed ${seed}: ${parked} parked; between ${mustPark} and ${mayPark} expected`,
    );
    const reasons = new Map(
      (await (await client.broker()).listParked({ limit: parked + 10 })).map((p) => [
        p.taskId,
        p.reason,
      ]),
    );
    const misreasoned = hostile.filter((h) =>
      h.reason && h.id !== null && !h.reason.test(reasons.get(h.id) ?? "(not parked)")
    ).map((h) => `${h.kind}: ${reasons.get(h.id!) ?? "(not parked)"}, expected ${h.reason}`);
    assert.deepEqual(misreasoned, [], `seed ${seed}: parked without the expected reason`);
    const kinds = new Map<string, number>();
    for (const h of hostile) kinds.set(h.kind, (kinds.get(h.kind) ?? 0) + 1);
    report(
      `hostile: ${n} hostile + 100 valid handled in ${seconds.toFixed(1)} s; ${parked} parked; ` +
        `kinds ${JSON.stringify(Object.fromEntries(kinds))}`,
    );
    const status = await worker.stop("SIGTERM");
    assert.equal(status.code, 0, "the worker shut down cleanly");
  } finally {
    await worker.stop("SIGKILL");
    await client.close();
    redis.disconnect();
    await deleteKeys(prefix);
  }
});
