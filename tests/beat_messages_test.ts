/**
 * What Celeriac's beat publishes on Redis, compared field by field with
 * what Celery 5.2.6's beat published for the same schedule
 * (tests/fixtures/celery-5.2/redis/beat/beat_published.json, from
 * capture/capapp.py with CAPTURE_BEAT=1).
 */

import assert from "node:assert/strict";
import { at, Beat, Celery } from "../mod.ts";
import { PRIORITY_SEP as SEP } from "../transports.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

interface Captured {
  redis_key: string;
  raw: string;
  body_decoded: unknown;
}

const FIXTURE = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/celery-5.2/redis/beat/beat_published.json", import.meta.url),
  ),
) as { messages: Captured[] };

/** The first captured message of a task. */
function celeryMessage(task: string): { key: string; envelope: Record<string, unknown> } {
  const m = FIXTURE.messages.find((m) => JSON.parse(m.raw).headers.task === task)!;
  return { key: m.redis_key, envelope: JSON.parse(m.raw) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function compare(ours: Record<string, unknown>, theirs: Record<string, unknown>): void {
  assert.deepEqual(Object.keys(ours), Object.keys(theirs), "envelope keys");
  for (const k of ["content-encoding", "content-type"]) assert.equal(ours[k], theirs[k], k);
  const [oh, th] = [ours.headers, theirs.headers] as Record<string, unknown>[];
  assert.deepEqual(Object.keys(oh), Object.keys(th), "header keys, in order");
  for (const k of Object.keys(th)) {
    if (k === "id" || k === "root_id") assert.match(String(oh[k]), UUID, k);
    else if (k === "origin") assert.match(String(oh[k]), /^gen\d+@.+$/, k);
    else if (k === "expires" && th[k] !== null) {
      assert.match(String(oh[k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/, k);
    } else assert.deepEqual(oh[k], th[k], `header ${k}`);
  }
  assert.equal(oh.root_id, oh.id, "root_id = id");
  const [op, tp] = [ours.properties, theirs.properties] as Record<string, unknown>[];
  assert.deepEqual(Object.keys(op), Object.keys(tp), "property keys, in order");
  for (const k of Object.keys(tp)) {
    if (k === "correlation_id") assert.equal(op[k], oh.id);
    else if (k === "reply_to" || k === "delivery_tag") assert.match(String(op[k]), UUID, k);
    else if (k === "expiration") assert.ok(Math.abs(Number(op[k]) - Number(tp[k])) < 50, k);
    else assert.deepEqual(op[k], tp[k], `property ${k}`);
  }
  const body = (env: Record<string, unknown>) => JSON.parse(atob(String(env.body)));
  assert.deepEqual(body(ours), body(theirs), "body");
}

Deno.test({
  name: "beat messages: field by field as Celery 5.2.6's beat publishes them on Redis",
  ignore: WITHOUT_REDIS,
  async fn() {
    const prefix = uniquePrefix("beatmsg");
    const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
    const past = at(Date.now() - 1000); // due at once, sent once
    // The schedule of capture/capapp.py, with one-off schedules so that each is sent once now.
    const app = new Celery({
      broker: url,
      backend: null,
      beatSchedule: {
        "add-every-2s": { task: "capapp.add", schedule: past, args: [16, 16] },
        "echo-every-minute-crontab": {
          task: "capapp.echo",
          schedule: past,
          kwargs: { source: "beat" },
          options: { expires: 30, priority: 3, headers: { "x-beat": "yes" } },
        },
        "remote-task-every-3s": {
          task: "remote.not.registered",
          schedule: past,
          args: ["x"],
          options: { queue: "other" },
        },
      },
    });
    app.task("capapp.add", (a: number, b: number) => a + b);
    // As capapp's echo(*args, **kwargs): a bound task takes any keywords (ctx.kwargs).
    app.task("capapp.echo", { bind: true }, (ctx, ...args: unknown[]) => [args, ctx.kwargs]);
    const beat = new Beat({ app, maxInterval: 0.2 });
    const redis = await rawRedis();
    try {
      await beat.start();
      const deadline = Date.now() + 10_000;
      while (beat.sent < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(beat.sent, 3);
      for (const task of ["capapp.add", "capapp.echo", "remote.not.registered"]) {
        const theirs = celeryMessage(task);
        const raw = await redis.lrange(prefix + theirs.key, 0, -1);
        assert.equal(raw.length, 1, `${task} in ${JSON.stringify(theirs.key)}`);
        compare(JSON.parse(raw[0]), theirs.envelope);
      }
      assert.equal(celeryMessage("capapp.echo").key, `celery${SEP}3`, "priority 3 list");
    } finally {
      await beat.stop();
      await app.close();
      await redis.quit();
      await deleteKeys(prefix);
    }
  },
});
