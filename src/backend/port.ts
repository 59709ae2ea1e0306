/**
 * The result backend port: where task states and results are stored, in
 * Celery's format, and how a client waits for them.
 *
 * @module
 */

import type { ResultMeta, TaskState } from "../protocol/result_meta.ts";

/**
 * One result to store.
 *
 * @example Storing a result
 * ```ts
 * import { encodeResultMeta, openBackend, type StoreEntry } from "@celeriac/celeriac/protocol";
 * const backend = await openBackend("kv://:memory:");
 * const taskId = crypto.randomUUID();
 * const entry: StoreEntry = {
 *   taskId,
 *   status: "SUCCESS",
 *   meta: encodeResultMeta({ taskId, status: "SUCCESS", result: 5, dateDone: new Date() }),
 * };
 * await backend.store([entry]);
 * (await backend.get(taskId))?.result; // 5
 * await backend.close();
 * ```
 */
export interface StoreEntry {
  /** The task id. */
  taskId: string;
  /** The state being stored (decides whether an earlier value may be replaced). */
  status: TaskState;
  /** The encoded meta JSON (see `encodeResultMeta`). */
  meta: string;
  /**
   * The task message's `reply_to` (the sending client's reply queue). The
   * rpc backend sends the result there and sends nothing without it; other
   * backends ignore it.
   */
  replyTo?: string | null;
  /** The task message's `correlation_id` when it differs from the task id (rpc backend). */
  correlationId?: string | null;
}

/**
 * The result backend contract.
 *
 * @example Reading a state from any backend
 * ```ts
 * import { openBackend, type ResultBackend } from "@celeriac/celeriac/protocol";
 * async function stateOf(backend: ResultBackend, taskId: string) {
 *   return (await backend.get(taskId))?.status ?? "PENDING";
 * }
 * const backend = await openBackend("kv://:memory:");
 * await stateOf(backend, crypto.randomUUID()); // "PENDING"
 * await backend.close();
 * ```
 */
export interface ResultBackend {
  /** Backend name: `redis`, `kv`, `rpc`. */
  readonly transport: string;
  /**
   * Store metas and notify waiters. A stored `SUCCESS` is never replaced, as
   * in Celery.
   */
  store(entries: readonly StoreEntry[]): Promise<void>;
  /** Read the current meta; `null` means PENDING (nothing stored). */
  get(taskId: string): Promise<ResultMeta | null>;
  /**
   * Wait, by push notification, until the task reaches a ready state
   * (SUCCESS, FAILURE, REVOKED); rejects with `signal.reason` on abort.
   */
  waitFor(taskId: string, signal?: AbortSignal): Promise<ResultMeta>;
  /** Delete a stored result. */
  forget(taskId: string): Promise<void>;
  /**
   * Get ready to receive results of tasks about to be sent, where results
   * travel to the client (rpc: declare and consume its reply queue, so a
   * fast worker's reply is not dropped). Stored backends need nothing.
   */
  prepare?(): Promise<void>;
  /** Close connections. */
  close(): Promise<void>;
}
