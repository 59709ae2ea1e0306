/**
 * Tasks for the worker-fleet test (tests/fleet_netns_test.ts): each run is
 * recorded as `<n>@<host>` in a Redis list, the host and the Redis to
 * record in coming from the worker's environment (FLEET_HOST,
 * FLEET_REDIS), so that the test sees which host ran what.
 */

import { Redis } from "ioredis";
import { Celery } from "../../mod.ts";

export const app = new Celery();

let redis: Redis | null = null;

/** Records `<n>@<host>` in `marker` after `ms` milliseconds (late acknowledgement). */
export const record = app.task(
  "fleet.record",
  { acksLate: true },
  async (n: number, marker: string, ms: number) => {
    redis ??= new Redis(Deno.env.get("FLEET_REDIS") ?? "redis://127.0.0.1:6379/0");
    await new Promise((r) => setTimeout(r, ms));
    await redis.rpush(marker, `${n}@${Deno.env.get("FLEET_HOST") ?? "?"}`);
    return n;
  },
);
