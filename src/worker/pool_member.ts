/**
 * A Web Worker of the threads pool as the main thread sees it, and posting
 * to it.
 *
 * @module
 */

import type { RunRequest } from "./executor.ts";
import type { ToRunner, ToRunnerPosted } from "./pool_protocol.ts";
import { postSplitting } from "./post_split.ts";
import { packRun } from "./run_batch.ts";
import { writeRuns } from "./run_ring.ts";
import type { Sandbox, SpawnPermissions } from "./sandboxes.ts";
import type { RingReader, RingWriter } from "./shared_ring.ts";
import type { StartTable } from "./start_table.ts";
import type { ThreadRef } from "./thread_leaks.ts";
import type { TimeLimits } from "./time_limits.ts";

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
  /**
   * The threads that started with it, its own among them, to tell whether
   * it ends when terminated (null when they cannot be read).
   */
  threads: ThreadRef[] | null;
  load: number;
  /**
   * Estimated blocking work of the tasks it holds, in milliseconds (each
   * task its name's average, `MESSAGE_BLOCKING_MS` while unknown):
   * CPU-bound tasks go to the Web Worker with the least, not the fewest tasks.
   */
  work: number;
  assigned: number;
  /** Tasks posted to it so far, shared with it (it holds outcomes while more wait). */
  sent: Int32Array;
  /** When its tasks with time limits started, written by it (`start_table.ts`). */
  starts: StartTable;
  /** Its ring for plain run requests (`run_ring.ts`), and the messages posted to it so far. */
  runs?: { ring: RingWriter; posts: number };
  /** Its ring for plain outcomes (`outcome_ring.ts`), which the main thread listens to. */
  outcomes?: RingReader;
  /**
   * Read the outcomes its ring holds now and hand them on, as the ring's
   * listener does later: done before its tasks are split into started and
   * not when it is stopped, so that a finished task is not reported lost.
   */
  drain(): void;
  ready: Promise<void>;
  up: boolean;
  dead: boolean;
  retiring: boolean;
}

/** A task the pool handed to a member, until its outcome is read. */
export interface Owned {
  member: Member;
  task: string;
  id: string;
  /** Its estimated blocking work, counted in its member's `work`. */
  work: number;
  /** Its time limits, started when its Web Worker reports it started. */
  limits: TimeLimits | undefined;
  /** Its Web Worker posted its start (its start table slot was held); else the table tells. */
  started: boolean;
  /**
   * Not started when a terminate halted its Web Worker: handed on (run on another Web Worker; a
   * revoked one is put back), whatever the halted thread posts.
   */
  back?: boolean;
}

/**
 * Post a message to a member unless it is dead, counting the tasks of a
 * `run` message in its shared `sent` counter before posting: the Web
 * Worker never sees fewer tasks sent than it has received. The bodies of a
 * `run` message that are views of a larger buffer (a Redis take decodes
 * its small bodies into one) are first given one buffer holding only
 * theirs: a post clones each body's whole buffer, so a take cut into many
 * messages (tasks blocking a millisecond or more travel one to a message,
 * and each Web Worker gets its own) would be copied once per message, and
 * kept by the Web Worker as long as each task runs. A `run` batch is
 * posted packed ({@link packRun}: far cheaper to clone than the request
 * objects), and the Web Worker unpacks it; a batch of plain requests is
 * written to the member's shared ring instead when it fits (`run_ring.ts`).
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
  let n = 0;
  let posted: ToRunnerPosted;
  const runs = member.runs;
  if (msg.type === "run") {
    n = msg.batch.length;
    if (runs) {
      Atomics.add(member.sent, 0, n);
      if (writeRuns(runs.ring, msg.batch, runs.posts)) return;
      Atomics.sub(member.sent, 0, n);
    }
    ownBodies(msg.batch);
    posted = { type: "run", batch: packRun(msg.batch) };
  } else posted = msg;
  Atomics.add(member.sent, 0, n);
  try {
    member.worker.postMessage(posted);
  } catch (err) {
    Atomics.sub(member.sent, 0, n);
    throw err;
  }
  if (runs) runs.posts++;
}

/**
 * Post a batch of tasks to a member. When it cannot be posted (a value the
 * structured clone refuses), each task is posted alone and the ones that
 * still fail go to `refuse` (which parks them with a FAILURE), instead of
 * throwing into the worker's receive path or waiting forever.
 *
 * @example
 * ```ts ignore
 * postRun(member, batch, (req, err) => log.error("{id} refused: {err}", { id: req.id, err }));
 * ```
 *
 * @param member the Web Worker
 * @param batch the tasks
 * @param refuse called for each task that cannot be posted, with what `postMessage` threw
 */
export function postRun(
  member: Member,
  batch: RunRequest[],
  refuse: (req: RunRequest, err: unknown) => void,
): void {
  postSplitting(batch, (part) => postTo(member, { type: "run", batch: part }), refuse);
}

/**
 * Mark a member dead, halt it (its thread, which Deno may leave running,
 * starts no more tasks: see `start_table.ts`) and terminate its Web Worker;
 * its outcome ring's listener stops (a wait left pending would keep the
 * ring's memory).
 *
 * @example
 * ```ts ignore
 * endMember(member);
 * ```
 *
 * @param member the Web Worker
 */
export function endMember(member: Member): void {
  member.dead = true;
  member.starts.halt();
  member.worker.terminate();
  member.outcomes?.wake();
}

/**
 * Halt a member (its thread, which Deno may leave running, starts no more
 * tasks) and split the tasks it holds: those that started on it, as its
 * start table or a `started` post tells (read after the halt: a task not
 * started by then never starts), and those that never will (with those
 * marked `back`: not started at an earlier halt, they wrote their start
 * after it and then read it).
 *
 * @example
 * ```ts ignore
 * const { started, notStarted } = haltAndSplit(member, owners);
 * ```
 *
 * @param member the Web Worker
 * @param owners every task of the pool with its member, and whether it posted its start
 * @returns the member's tasks, by dispatch number, started and not
 */
export function haltAndSplit(
  member: Member,
  owners: Iterable<[number, Pick<Owned, "member" | "started" | "back">]>,
): { started: number[]; notStarted: number[] } {
  member.starts.halt();
  const started: number[] = [];
  const notStarted: number[] = [];
  for (const [seq, o] of owners) {
    if (o.member !== member) continue;
    if (o.started || (!o.back && member.starts.hasStarted(seq))) started.push(seq);
    else notStarted.push(seq);
  }
  return { started, notStarted };
}

/** Give a batch's bodies one buffer of their own when their buffers hold more than them. */
function ownBodies(batch: RunRequest[]): void {
  let bytes = 0;
  let held = 0;
  let last: ArrayBufferLike | null = null;
  for (let i = 0; i < batch.length; i++) {
    const body = batch[i].body;
    bytes += body.byteLength;
    // A buffer met again after another is counted again: at worst a copy the post makes anyway.
    if (body.buffer !== last) {
      last = body.buffer;
      held += last.byteLength;
    }
  }
  if (held <= bytes) return;
  const packed = new Uint8Array(bytes);
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const body = batch[i].body;
    packed.set(body, at);
    batch[i].body = packed.subarray(at, at + body.byteLength);
    at += body.byteLength;
  }
}
