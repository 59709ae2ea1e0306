/**
 * What the argument-check tests (send_arity, canvas_arity) share: an app on
 * an in-memory KV broker whose default queue's depth says whether anything
 * was sent, and the refusal a call must end with.
 */

import assert from "node:assert/strict";
import { Celery, TaskArgumentsError } from "../../mod.ts";

/**
 * Run `fn` with an app on `kv://:memory:` (results on `backend`, default
 * none) and a reader of its default queue's depth; the app is closed after.
 */
export async function withMemoryApp(
  fn: (app: Celery, depth: () => Promise<number>) => Promise<void>,
  backend: string | null = null,
): Promise<void> {
  const app = new Celery({ broker: "kv://:memory:", backend });
  try {
    const broker = await app.broker();
    await fn(app, () => broker.queueDepth(app.config.defaultQueue));
  } finally {
    await app.close();
  }
}

/** The TaskArgumentsError `p` rejects with; fails the test if it resolves or rejects otherwise. */
export async function refusal(p: Promise<unknown>): Promise<TaskArgumentsError> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof TaskArgumentsError, `sent, or another error: ${err}`);
  return err;
}
