/**
 * The result backend port: where task states and results are stored, in
 * Celery's format, and how a client waits for them.
 *
 * @module
 */

import type { ResultMeta, TaskState } from "../protocol/result_meta.ts";
import type { ProtocolError } from "../protocol/errors.ts";
import type { ChordMember } from "../protocol/signature.ts";

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
   * (SUCCESS, FAILURE, REVOKED); rejects with `signal.reason` on abort,
   * unless a ready state is stored by then: the abort ends the wait, not
   * the reading of a stored result (as Celery's `get(timeout=0)` returns a
   * finished task's result), which may take longer than the timeout.
   * `onState` receives the states stored before (STARTED, RETRY, custom
   * states such as PROGRESS) as they arrive, and the one stored when the
   * wait begins, each once per store (a state read again, by a re-check or
   * a first read racing a notification, is not told again; a task retried
   * three times is told three RETRYs). When an abort
   * ends the wait before the task is ready, it is then given the state read
   * at the abort (a PENDING meta when nothing is stored), unless that read
   * failed: a client saying why its wait ended reads nothing more.
   */
  waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta>;
  /** Delete a stored result. */
  forget(taskId: string): Promise<void>;
  /**
   * The caller keeps the ready meta `get` gave for `taskId` (its result
   * handle answers from it from now on): a backend that keeps results
   * only for this client (rpc://) drops its copy, as a wait that took it
   * does. Stored backends need nothing.
   */
  release?(taskId: string): void;
  /**
   * Get ready to receive results of tasks about to be sent, where results
   * travel to the client (rpc: declare and consume its reply queue, so a
   * fast worker's reply is not dropped). Stored backends need nothing.
   */
  prepare?(): Promise<void>;
  /**
   * A task whose result may be waited for is about to be sent (called with
   * its send, before the message goes): a backend that notifies waiters may
   * start listening for it now, so that a wait right behind the send does
   * not wait for that first (Redis: its channel is subscribed to, once a
   * caller has waited, and left again when no wait comes soon). Others
   * need nothing.
   */
  expect?(taskId: string): void;
  /** Close connections. */
  close(): Promise<void>;
  /**
   * Store a chord's size before its header is sent (Redis:
   * `celery-taskset-meta-<gid>.s`). Present only on backends that join
   * chords (Redis, KV); a chord on any other backend is refused at apply
   * time.
   */
  setChordSize?(groupId: string, size: number): Promise<void>;
  /**
   * Record a finished chord header member. Resolves to every member's
   * outcome in header order when this call completed the chord (exactly
   * one member per chord gets them; that member again when it joins again,
   * redelivered, before `chordCleanup`), else `null`. Join keys another tool
   * spoiled reject exactly one caller per chord with a ProtocolError (it
   * fails the chord), even when members join at once; the others get `null`.
   * With `failure`, a caller that finds them spoiled calls it for the
   * entries that fail the chord (its body's FAILURE, ...) and they are
   * stored with the claim that decides which caller rejects (in one script
   * or commit; on a Redis Cluster, whose result keys are in other slots,
   * just before it): a worker that dies right after the claim leaves the
   * chord failed, not hanging. A caller that rejected after calling
   * `failure` has them stored.
   */
  chordPartReturn?(part: ChordPart, failure?: ChordFailure): Promise<ChordMember[] | null>;
  /** Remove a chord's join bookkeeping once its body was sent or it failed. */
  chordCleanup?(groupId: string): Promise<void>;
  /** Store a group meta (`celery-taskset-meta-<gid>`, see `encodeGroupMeta`). */
  saveGroup?(groupId: string, meta: string): Promise<void>;
  /** Read a saved group meta's JSON text; `null` when none is stored. */
  restoreGroup?(groupId: string): Promise<string | null>;
  /** Delete a saved group meta. */
  forgetGroup?(groupId: string): Promise<void>;
}

/**
 * The entries that fail a chord whose join keys are spoiled (its body's
 * FAILURE first, then those of the chain steps after it, any number), made
 * from the join's error; see
 * {@link ResultBackend.chordPartReturn}.
 *
 * @example
 * ```ts
 * import type { ChordFailure } from "@celeriac/celeriac/protocol";
 * const failure: ChordFailure = (err) => [{
 *   taskId: "body", status: "FAILURE", meta: JSON.stringify({ status: "FAILURE", result: err.message }),
 * }];
 * ```
 */
export type ChordFailure = (err: ProtocolError) => StoreEntry[];

/**
 * A finished chord header member, as the worker reports it to
 * {@link ResultBackend.chordPartReturn}.
 *
 * @example
 * ```ts
 * import type { ChordPart } from "@celeriac/celeriac/protocol";
 * const part: ChordPart = {
 *   groupId: "g", groupIndex: 0, taskId: "t1", state: "SUCCESS", resultJson: "2",
 * };
 * ```
 */
export interface ChordPart {
  /** The chord's group id (the member's `group` header). */
  groupId: string;
  /** The member's `group_index` (its place in the header); `null` sorts last. */
  groupIndex: number | null;
  /** The member's task id. */
  taskId: string;
  /** Its final state. */
  state: TaskState;
  /** Its result (or exception dict) as JSON text. */
  resultJson: string;
  /**
   * A join made again by a suppressed duplicate (default false): an entry
   * already recorded under its task id is kept as it is, so the member is not
   * counted twice when its stored result does not read back to the same text
   * (Redis: a whole float `1.0` reads back as `1`).
   */
  again?: boolean;
}
