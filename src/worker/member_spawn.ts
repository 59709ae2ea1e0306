/**
 * Starting one Web Worker of the threads pool: the {@link Member} the main
 * thread keeps for it, its `init` message, and what it sends back (ready,
 * a failed app module, outcomes, publishes and state updates) wired to the
 * pool (`thread_pool.ts`).
 *
 * @module
 */

import type { RunOutcome } from "./executor.ts";
import type { PoolEvents } from "./pool.ts";
import { readOutcomes } from "./outcome_ring.ts";
import { type Group, type Member, postTo } from "./pool_member.ts";
import { type FromRunner, isPoolMessage, type ToRunner } from "./pool_protocol.ts";
import { unpackOutcomes } from "./run_batch.ts";
import { cannotSpawn } from "./sandbox_start.ts";
import { newRing, RingReader, RingWriter } from "./shared_ring.ts";
import { spawnRunner } from "./spawn_runner.ts";
import { StartTable } from "./start_table.ts";
import type { ThreadWatch } from "./thread_leaks.ts";
import { ownThread } from "./thread_self.ts";

/** The script each Web Worker of the threads pool runs. */
export const RUNNER_URL: URL = new URL("./runner.ts", import.meta.url);

/**
 * What every Web Worker of a pool is told at start: the app module and its settings.
 *
 * @example
 * ```ts ignore
 * const init: MemberInit = { module: appModule, exportName: "app", config, measureMemory: false };
 * ```
 */
export type MemberInit = Pick<
  Extract<ToRunner, { type: "init" }>,
  "module" | "exportName" | "config" | "maxDecompressedSize" | "measureMemory"
>;

/**
 * Where a member's messages go.
 *
 * @example
 * ```ts ignore
 * const hooks: MemberHooks = {
 *   events,
 *   onOutcomes: (member, outcomes) => settle(member, outcomes),
 *   onFail: (member, reason) => replace(member, reason),
 *   threads,
 * };
 * ```
 */
export interface MemberHooks {
  /** The pool's events: a member's publishes and state updates are made through them. */
  events: Pick<PoolEvents, "onPublish" | "onState">;
  /** A batch of outcomes, and the heap size when measured. */
  onOutcomes(member: Member, outcomes: RunOutcome[], memory: number | undefined): void;
  /** A task with time limits is about to run on the member, and its start table had no room. */
  onStarted(member: Member, seq: number): void;
  /**
   * The Web Worker crashed, could not load the app module, or task code
   * ended its thread (`Deno.exit()`, `close()`); its `ready` has rejected.
   */
  onFail(member: Member, reason: string): void;
  /** Notes the Web Worker's thread (see `thread_leaks.ts`). */
  threads: ThreadWatch;
}

/**
 * Start a Web Worker in `group`'s sandbox and post it `init`. Its `ready`
 * resolves once it has loaded the app module, and rejects (handled) when
 * it fails first.
 *
 * @example
 * ```ts ignore
 * const member = spawnMember(group, { module, config: {} }, {
 *   events,
 *   onOutcomes: (m, outcomes) => settle(outcomes),
 *   onStarted: (m, seq) => startLimits(seq),
 *   onFail: (m, reason) => replace(m, reason),
 *   threads,
 * });
 * await member.ready;
 * ```
 *
 * @param group the sandbox group it belongs to
 * @param init the app module and settings
 * @param hooks where its messages go
 * @returns the member
 * @throws {Error} when the Web Worker cannot be started (see `cannotSpawn`)
 */
export function spawnMember(group: Group, init: MemberInit, hooks: MemberHooks): Member {
  let worker: Worker;
  let threads;
  try {
    ({ value: worker, threads } = hooks.threads.spawn(() =>
      spawnRunner(RUNNER_URL, group.spawn.permissions)
    ));
  } catch (err) {
    throw cannotSpawn(group, (err as Error).message);
  }
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  ready.catch(() => {});
  const runRing = newRing();
  const member: Member = {
    group,
    worker,
    threads,
    load: 0,
    work: 0,
    assigned: 0,
    sent: new Int32Array(new SharedArrayBuffer(4)),
    starts: new StartTable(),
    runs: { ring: new RingWriter(runRing), posts: 0 },
    drain: () => fromRing(),
    ready,
    up: false,
    dead: false,
    retiring: false,
  };
  const fail = (reason: string) => {
    reject(new Error(`A Web Worker failed: ${reason}`));
    hooks.onFail(member, reason);
  };
  const { events } = hooks;
  const ring = newRing();
  const reader = member.outcomes = new RingReader(ring);
  /** Posts of the Web Worker handled: its ring's records written after more wait for them. */
  let received = 0;
  const fromRing = () => {
    if (member.dead) return;
    const { outcomes, now } = readOutcomes(reader, received);
    if (outcomes.length === 0) return;
    member.starts.sync(now);
    hooks.onOutcomes(member, outcomes, undefined);
  };
  reader.listen(fromRing, () => member.dead);
  worker.onmessage = (e: MessageEvent<FromRunner>) => {
    // Task code's own posts are not the runner's: counting them would read the ring too early.
    if (!isPoolMessage("from", e.data)) return;
    // The ring's outcomes written before this post go first, those written after it next.
    fromRing();
    received++;
    try {
      handle(e.data);
    } finally {
      fromRing();
    }
  };
  const handle = (msg: FromRunner) => {
    // Ended (dropped or terminated): what it still posts is reported already.
    if (member.dead) return;
    switch (msg.type) {
      case "ready":
        member.starts.sync(msg.now);
        member.threads = ownThread(member.threads, msg.tid);
        member.up = true;
        group.failures = 0;
        resolve();
        break;
      case "init-error":
        fail(`the app module failed to load:\n${msg.error}`);
        break;
      case "started":
        hooks.onStarted(member, msg.seq);
        break;
      case "outcomes":
        member.starts.sync(msg.now);
        hooks.onOutcomes(member, unpackOutcomes(msg.outcomes), msg.memory);
        break;
      case "publish":
        events.onPublish(msg.message, msg.target, msg.child, msg.queue).then(
          () => postTo(member, { type: "published", id: msg.id }),
          (err) => postTo(member, { type: "published", id: msg.id, error: String(err) }),
        );
        break;
      case "store":
        (events.onState?.(msg.seq, msg.status, msg.meta, msg.final) ?? Promise.resolve()).then(
          () => postTo(member, { type: "stored", id: msg.id }),
          (err) => postTo(member, { type: "stored", id: msg.id, error: String(err) }),
        );
        break;
      case "dying":
        fail(`task code called ${msg.how}`);
        break;
    }
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    fromRing();
    fail(e.message);
  };
  postTo(member, {
    type: "init",
    ...init,
    revoke: group.spawn.revoke,
    sandboxed: group.sandbox.permissions !== "inherit",
    sent: member.sent,
    starts: member.starts.memory,
    outcomes: ring,
    runs: runRing,
  });
  return member;
}
