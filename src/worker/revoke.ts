/**
 * Revoking tasks in a worker (the `revoke` remote control command, and
 * `Worker.revoke`): the ids are remembered here and in the broker, tasks
 * held for an ETA or a rate token are dropped, tasks handed to the pool
 * that have not started are not started, and with `terminate` running ones
 * are stopped ({@link toTerminate} picks them, pure).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Intake } from "./intake.ts";
import { REVOKE_TTL_MS } from "./revoked_ids.ts";
import type { WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * The running tasks a terminating revoke stops: those with one of `ids`
 * that are not being terminated already.
 *
 * @example
 * ```ts
 * import { toTerminate } from "./revoke.ts";
 * const running = new Map([[1, { req: { id: "a" } }], [2, { req: { id: "b" } }]]);
 * toTerminate(running, new Map([[2, 15]]), ["a", "b", "c"]); // { seqs: [1], ids: ["a"] }
 * ```
 *
 * @param running running tasks by dispatch number
 * @param terminated dispatch numbers being terminated (a set, or a map by dispatch number)
 * @param ids the revoked task ids
 * @returns their dispatch numbers and task ids, in running order
 */
export function toTerminate(
  running: Iterable<[number, { req: { id: string } }]>,
  terminated: { has(seq: number): boolean },
  ids: readonly string[],
): { seqs: number[]; ids: string[] } {
  const wanted = new Set(ids);
  const seqs: number[] = [];
  const killed: string[] = [];
  for (const [seq, r] of running) {
    if (wanted.has(r.req.id) && !terminated.has(seq)) {
      seqs.push(seq);
      killed.push(r.req.id);
    }
  }
  return { seqs, ids: killed };
}

/**
 * Options of {@link revokeTasks} (and `Worker.revoke`).
 *
 * @example
 * ```ts
 * import type { RevokeTasksOptions } from "./revoke.ts";
 * const options: RevokeTasksOptions = { terminate: true, stored: true, signum: 9 };
 * ```
 */
export interface RevokeTasksOptions {
  /** Also stop the running ones. Default false. */
  terminate?: boolean;
  /**
   * The ids are in the broker's revoked list already: a Celeriac client
   * stored them before broadcasting (its request carries
   * `REVOKE_STORED_ARG`). Default false: they are stored, so workers that
   * start later skip them too (revokes from Celery's client, or to named nodes).
   */
  stored?: boolean;
  /**
   * The signal number a terminate reports in `task-revoked`'s `signum`
   * (`control terminate SIGKILL`: 9). Default 15 (SIGTERM). The task is
   * stopped the same way whatever the signal: its Web Worker is ended.
   */
  signum?: number;
}

/**
 * Revoke tasks for {@link REVOKE_TTL_MS}: those handed to the pool whose
 * handler was not called yet are not run (stored as REVOKED "revoked" when
 * the pool reports them); with `terminate`, also stop the running ones
 * (stored as REVOKED "terminated").
 *
 * @example
 * ```ts ignore
 * revokeTasks(state, intake, [taskId], { terminate: true }); // [taskId] if it was running
 * ```
 *
 * @param s the worker's state
 * @param intake drops the held tasks
 * @param ids task ids
 * @param options whether to stop running ones, and whether the ids are stored already
 * @returns the ids that were running and are being terminated
 */
export function revokeTasks(
  s: WorkerState,
  intake: Intake,
  ids: readonly string[],
  options: RevokeTasksOptions = {},
): string[] {
  const { terminate = false, stored = false, signum = 15 } = options;
  const until = Date.now() + REVOKE_TTL_MS;
  s.revoked.add(ids, until);
  if (!stored) {
    // The broker stores the newest 50,000 of a long list, a chunk at a time (RabbitMQ, Redis).
    const expiresAt = new Date(until);
    s.broker?.addRevoked(ids.map((id) => ({ id, expiresAt }))).catch((err) =>
      log.warn("Cannot remember revoked ids in the broker: {error}", {
        error: (err as Error).message,
      })
    );
  }
  intake.revoke(ids);
  const { seqs, ids: killed } = toTerminate(s.running, s.terminated, ids);
  if (seqs.length) s.pool.revoke(seqs);
  if (!terminate) return [];
  for (const seq of seqs) s.terminated.set(seq, signum);
  if (seqs.length) s.pool.terminate(seqs);
  return killed;
}
