/**
 * Tasks whose follow-up code awaits another task's result, for
 * tests/pool_follow_up_wait_test.ts: `fu.spin_ok`'s `onSuccess` hook and
 * `fu.eb` (an old-style errback of `fu.spin_fail`, called in-process) each
 * send `fu.add` and await its result; with one slot, that child runs on the
 * same Web Worker (or the inline pool) as the task whose outcome waits for it.
 */

import { Celery, type ErrbackRequest } from "../../mod.ts";

export const app = new Celery();

/** How long follow-up code waits for its child: longer than the test waits for the parent. */
const CHILD_TIMEOUT_MS = 8_000;

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* blocking work */ }
}

export const add = app.task("fu.add", (a: number, b: number) => a + b);

/** Blocks `ms`, succeeds; its hook awaits `fu.add(2, 2)`, sent with a hard time limit if `hard`. */
export const spinOk = app.task("fu.spin_ok", {
  onSuccess: async (value) => {
    const { hard } = value as { hard: boolean };
    const child = await add.applyAsync([2, 2], hard ? { timeLimit: 30 } : {});
    await child.get({ timeout: CHILD_TIMEOUT_MS });
  },
}, (ms: number, hard: boolean) => {
  spin(ms);
  return { ms, hard };
});

/** Blocks `ms`, fails. */
export const spinFail = app.task("fu.spin_fail", (ms: number): never => {
  spin(ms);
  throw new Error("on purpose");
});

/** An errback called in the worker (three parameters): awaits `fu.add(1, 2)`. */
export const eb = app.task("fu.eb", async (_req: ErrbackRequest, _exc: unknown, _tb: string) => {
  const child = await add.delay(1, 2);
  return await child.get({ timeout: CHILD_TIMEOUT_MS });
});
