/**
 * A Web Worker of the threads pool as the main thread sees it, and posting
 * to it.
 *
 * @module
 */

import type { ToRunner } from "./pool_protocol.ts";
import type { Sandbox, SpawnPermissions } from "./sandboxes.ts";

/** Web Workers sharing one permission sandbox. */
export interface Group {
  sandbox: Sandbox;
  spawn: SpawnPermissions;
  /** Members that take new tasks. */
  members: Member[];
  /** Consecutive members that failed to start (for the respawn backoff). */
  failures: number;
}

/** One Web Worker of the pool. */
export interface Member {
  group: Group;
  worker: Worker;
  load: number;
  assigned: number;
  /** Tasks posted to it so far, shared with it (it holds outcomes while more wait). */
  sent: Int32Array;
  ready: Promise<void>;
  up: boolean;
  dead: boolean;
  retiring: boolean;
}

/**
 * Post a message to a member unless it is dead, counting the tasks of a
 * `run` message in its shared `sent` counter before posting: the Web
 * Worker never sees fewer tasks sent than it has received.
 *
 * @example
 * ```ts ignore
 * postTo(member, { type: "run", batch });
 * ```
 *
 * @param member the Web Worker
 * @param msg the message
 * @throws what `postMessage` throws (a value the structured clone refuses); nothing is counted then
 */
export function postTo(member: Member, msg: ToRunner): void {
  if (member.dead) return;
  const n = msg.type === "run" ? msg.batch.length : 0;
  Atomics.add(member.sent, 0, n);
  try {
    member.worker.postMessage(msg);
  } catch (err) {
    Atomics.sub(member.sent, 0, n);
    throw err;
  }
}
