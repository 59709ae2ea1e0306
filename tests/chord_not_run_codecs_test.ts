/**
 * A chord header member that will not run (revoked while held for its
 * countdown, or expired when the worker takes it) and whose message is
 * compressed or msgpack: the worker's main thread decodes its body to join
 * the chord, so it loads the codecs the message needs, and the chord fails
 * with `ChordError` as with a plain member, as in Celery. The worker runs
 * in a process of its own: in this one the codecs loaded to send would be
 * loaded for it too.
 */

import assert from "node:assert/strict";
import { type AsyncResult, chord, type GroupResult, TaskError } from "../mod.ts";
import { add, app, tsum } from "./apps/canvas_app.ts";
import { celeriacWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("chord-codecs");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

function startWorker(queue: string): Promise<Proc> {
  return celeriacWorker([
    "--app",
    "./tests/apps/canvas_app.ts",
    "--broker",
    BROKER,
    "--backend",
    BROKER,
    "-Q",
    queue,
    "-c",
    "1",
    "--without-heartbeat",
  ]);
}

async function chordError(c: AsyncResult<number>): Promise<TaskError> {
  const err = await c.get({ timeout: 10_000 }).then(() => null, (e) => e);
  assert.ok(err instanceof TaskError, `${err}`);
  assert.equal(err.excType, "ChordError");
  return err;
}

const encodings = [
  ["zlib", { compression: "zlib" }],
  ["msgpack", { serializer: "msgpack" }],
] as const;

for (const [label, encoding] of encodings) {
  Deno.test({
    name: `chord on Redis: a ${label} member revoked while held fails its chord`,
    ignore: WITHOUT_REDIS,
  }, async () => {
    const queue = `cc-revoked-${crypto.randomUUID().slice(0, 8)}`;
    app.configure({ broker: BROKER, backend: BROKER, defaultQueue: queue });
    const worker = await startWorker(queue);
    try {
      const c = await chord(
        [add.s(1, 1).set({ countdown: 5, ...encoding }), add.s(2, 2)],
        tsum.s().set({ queue }),
      )
        .applyAsync();
      const member = (c.parent as GroupResult<number[]>).children[0];
      await new Promise((r) => setTimeout(r, 1000)); // held by the worker for its countdown
      await member.revoke();
      const err = await chordError(c);
      assert.deepEqual(err.excMessage, [
        `Dependency ${member.id} raised TaskRevokedError('revoked')`,
      ]);
    } finally {
      await worker.stop("SIGTERM");
      await app.close();
    }
  });

  Deno.test({
    name: `chord on Redis: a ${label} member expired when taken fails its chord`,
    ignore: WITHOUT_REDIS,
  }, async () => {
    const queue = `cc-expired-${crypto.randomUUID().slice(0, 8)}`;
    app.configure({ broker: BROKER, backend: BROKER, defaultQueue: queue });
    const c = await chord(
      [add.s(1, 1).set({ expires: 0.5, ...encoding }), add.s(2, 2)],
      tsum.s().set({ queue }),
    )
      .applyAsync();
    const member = (c.parent as GroupResult<number[]>).children[0];
    await new Promise((r) => setTimeout(r, 1000));
    const worker = await startWorker(queue);
    try {
      const err = await chordError(c);
      assert.deepEqual(err.excMessage, [
        `Dependency ${member.id} raised TaskRevokedError('expired')`,
      ]);
    } finally {
      await worker.stop("SIGTERM");
      await app.close();
    }
  });
}

Deno.test({ name: "chord on Redis: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
