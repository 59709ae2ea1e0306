/**
 * The `threads` pool: Web Workers grouped by permission sandbox. A Web
 * Worker is started and wired in `member_spawn.ts` and posted to through
 * `pool_member.ts`; `placement.ts` picks the one a task goes to, and
 * `thread_pool_options.ts` holds the pool's options.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BlockingByName, MESSAGE_BLOCKING_MS, messagesOf, spreadLead } from "./blocking_time.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";
import type { Pool, PoolEvents } from "./pool.ts";
import {
  endMember,
  type Group,
  haltAndSplit,
  type Member,
  type Owned,
  postRun,
  postTo,
} from "./pool_member.ts";
import { RUNNER_URL, spawnMember } from "./member_spawn.ts";
import { RecyclePolicy } from "./recycling.ts";
import { logDeath } from "./member_death.ts";
import { placeTask } from "./placement.ts";
import { refusedOutcome } from "./refused_outcome.ts";
import { checkPoolLoads, checkSandboxStart, sandboxGroups } from "./sandbox_start.ts";
import { SeqMap } from "./seq_map.ts";
import { reportTerminate } from "./terminate_report.ts";
import type { LeakedThread } from "./leaked_threads.ts";
import { ThreadWatch } from "./thread_leaks.ts";
import {
  checkPoolOptions,
  checkResize,
  groupCount,
  type ThreadPoolOptions,
} from "./thread_pool_options.ts";
import { logSoftTimeLimit, TimeLimitTimers } from "./time_limits.ts";
import { UnreadWaits } from "./unread_posts.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * A pool of Web Workers, each importing the app module and running many
 * tasks at a time (async handlers interleave; sync handlers run in turn).
 *
 * - Tasks run in the group of Web Workers of their permission sandbox.
 * - Tasks that block their thread for long go a few to a message (see
 *   `blocking_time.ts`), so that a Web Worker is sent more while it runs them.
 * - Time limits: timers on the main thread fire a task's AbortSignal at its
 *   soft limit, and at its hard limit terminate its Web Worker; of the other
 *   tasks that Web Worker held, those it had not started are reported
 *   abandoned, for the worker to hand on (run on another Web Worker; a
 *   revoked one is put back in its queue; it is halted
 *   first: its thread, which Deno may leave running, never starts them),
 *   and those it had started lost. The limits start when the task starts in its
 *   Web Worker (as Celery's start when a pool process accepts the job),
 *   which writes that in memory the main thread reads (`start_table.ts`;
 *   a message when its slot is taken): a task waiting behind others on
 *   its Web Worker is not timed.
 * - Revoke: a task revoked while it waits in its Web Worker is marked in
 *   the same table, and its Web Worker does not start it.
 * - Recycling: a Web Worker that was given its quota of tasks, or whose
 *   heap outgrew its bound, takes no new task, finishes what it holds and
 *   is replaced (the replacement starts at once).
 * - A terminated Web Worker whose thread runs on (Deno does not stop a
 *   synchronous loop) is reported to `onThreadLeak` (`thread_leaks.ts`).
 * - A Web Worker that dies (an uncaught error, or task code calling
 *   `Deno.exit()` or `close()`: see `exit_guard.ts`) is replaced (with
 *   backoff if replacements keep failing); the tasks it had started are
 *   reported lost, the others handed on (run on another Web Worker; a
 *   revoked one is put back).
 *
 * @example
 * ```ts
 * import { type PoolEvents, ThreadPool } from "@celeriac/celeriac/worker";
 * const events: PoolEvents = {
 *   onOutcomes: (outcomes) => console.log(outcomes.length, "finished"),
 *   onPublish: async () => {}, // a task sent a task: publish it
 *   onLost: (seqs, reason) => console.error(seqs, reason),
 *   onTimeLimit: (seq, seconds) => console.error(seq, "ran past", seconds, "s"),
 * };
 * const pool = new ThreadPool({ size: 2, slots: 16, module: "file:///srv/tasks.ts", config: {} }, events);
 * await pool.start();
 * ```
 */
export class ThreadPool implements Pool {
  readonly #options: ThreadPoolOptions;
  readonly #events: PoolEvents;
  readonly #policy: RecyclePolicy;
  readonly #limits: TimeLimitTimers;
  readonly #threads: ThreadWatch;
  #groups: Group[] = [];
  readonly #groupOf = new Map<string, Group>();
  /** Members out of their group that take no new task and are not ended yet: retiring, or halted. */
  readonly #retiring = new Set<Member>();
  readonly #owner = new SeqMap<Owned>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #blocking = new BlockingByName();
  /** Terminates waiting for outcomes their Web Worker posted: a terminate drops those unread. */
  readonly #unread = new UnreadWaits(this.#owner);
  #closed = false;
  /** Web Workers added to (or, when negative, taken from) the default group by {@link ThreadPool.resize}. */
  #extra = 0;

  /**
   * Configure the pool; its Web Workers start with {@link ThreadPool.start}.
   *
   * @param options size, slots, module, sandboxes and recycling
   * @param events where outcomes go
   * @throws {RangeError} for no Web Worker or slot, more Web Workers than
   *   {@link MAX_POOL_SIZE}, or a `leakGraceMs` that is not a number of ms > 0
   */
  constructor(options: ThreadPoolOptions, events: PoolEvents) {
    checkPoolOptions(options);
    this.#options = options;
    this.#events = events;
    this.#policy = new RecyclePolicy(options.recycle);
    this.#limits = new TimeLimitTimers(
      {
        soft: (seq, seconds) => this.#softLimit(seq, seconds),
        hard: (seq, seconds) => this.#hardLimit(seq, seconds),
      },
      (seq) => this.#owner.get(seq)?.member.starts.startedAt(seq) ?? null,
      (seq) => this.#owner.get(seq)?.member.starts.hasFinished(seq) ?? false,
    );
    this.#threads = new ThreadWatch((leak, count) => events.onThreadLeak?.(leak, count), {
      graceMs: options.leakGraceMs,
    });
  }

  /** Threads of terminated Web Workers that still run; null when they cannot be known. */
  get leakedThreads(): LeakedThread[] | null {
    return this.#threads.leaked;
  }

  /** Total task slots: every Web Worker the pool keeps × its slots. */
  get capacity(): number {
    return this.concurrency * this.#options.slots;
  }

  /** Web Workers the pool keeps taking tasks, across its sandbox groups. */
  get concurrency(): number {
    return groupCount(this.#options) * this.#options.size + this.#extra;
  }

  /** Web Workers of the default group that take tasks and hold none (those a shrink retires first). */
  get idle(): number {
    return this.#groups[0]?.members.filter((m) => m.load === 0 && !m.retiring && !m.dead).length ??
      0;
  }

  /** How many Web Workers group `g` keeps: the default group (the first) is resized. */
  #target(g: Group): number {
    return this.#options.size + (g === this.#groups[0] ? this.#extra : 0);
  }

  /**
   * Grow (`delta > 0`) or shrink (`delta < 0`) the default sandbox group by
   * `|delta|` Web Workers. New Web Workers take tasks at once (they run them
   * when their app module has loaded). Shrinking retires the least loaded
   * Web Workers: each takes no new task, finishes the tasks it holds, then
   * ends; running tasks are never stopped.
   *
   * @param delta Web Workers to add (positive) or retire (negative)
   * @throws {RangeError} when the default group would keep fewer than 1 Web Worker, or the
   *   pool more than {@link MAX_POOL_SIZE}
   */
  resize(delta: number): void {
    const current = this.#options.size + this.#extra;
    checkResize(delta, current, this.concurrency);
    this.#extra += delta;
    const g = this.#groups[0];
    if (!g || this.#closed) return;
    log.info("Pool {how} by {n} Web Worker(s): now {size}", {
      how: delta > 0 ? "grows" : "shrinks",
      n: Math.abs(delta),
      size: current + delta,
    });
    while (g.members.length < current + delta) g.members.push(this.#spawn(g));
    const excess = g.members.length - (current + delta);
    if (excess > 0) {
      const idlest = [...g.members].sort((a, b) => a.load - b.load).slice(0, excess);
      for (const m of idlest) this.#retire(m, "the pool shrinks", false);
    }
  }

  async start(): Promise<void> {
    this.#groups = sandboxGroups(this.#options.sandboxes, this.#options.module);
    for (const g of this.#groups) for (const t of g.sandbox.tasks) this.#groupOf.set(t, g);
    checkPoolLoads(RUNNER_URL, this.#options.module);
    checkSandboxStart(this.#groups);
    try {
      for (const g of this.#groups) {
        g.members = Array.from({ length: this.#target(g) }, () => this.#spawn(g));
      }
      await Promise.all(this.#groups.flatMap((g) => g.members.map((m) => m.ready)));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  #spawn(group: Group): Member {
    return spawnMember(group, {
      module: this.#options.module,
      exportName: this.#options.exportName,
      config: this.#options.config,
      maxDecompressedSize: this.#options.maxDecompressedSize,
      measureMemory: this.#policy.measuresMemory,
    }, {
      events: this.#events,
      onOutcomes: (member, outcomes, memory) => this.#onOutcomes(member, outcomes, memory),
      onStarted: (member, seq) => this.#started(member, seq),
      onFail: (member, reason) => this.#fail(member, reason),
      threads: this.#threads,
    });
  }

  /** Note a task its Web Worker posts started (its start table slot held) and start its limits. */
  #started(member: Member, seq: number): void {
    const o = this.#owner.get(seq);
    if (o?.member !== member) return;
    o.started = true;
    if (o.limits) this.#limits.start(seq, o.limits);
  }

  #onOutcomes(member: Member, all: RunOutcome[], memory: number | undefined): void {
    // Only this member's tasks: a seq handed on (run on another Web Worker) has a new owner. A
    // halted thread's batch can also hold outcomes of tasks handed on (not started at its halt).
    const outcomes: RunOutcome[] = [];
    for (const o of all) {
      const owned = this.#owner.get(o.seq);
      if (owned?.member !== member || (owned.back && !owned.started)) continue;
      outcomes.push(o);
      this.#blocking.observe(owned.task, o.blocked);
      member.work -= owned.work;
      this.#owner.delete(o.seq);
      this.#limits.clear(o.seq);
      member.starts.release(o.seq);
    }
    member.load -= outcomes.length;
    if (member.load === 0) member.work = 0; // no rounding residue between idle Web Workers
    if (memory !== undefined && this.#policy.overMemory(memory)) {
      this.#retire(member, `its heap is ${Math.round(memory / 1024)} KiB`);
    }
    this.#events.onOutcomes(outcomes);
    if (member.retiring && member.load === 0) this.#dismiss(member);
    this.#unread.read(member);
  }

  /** Take no new task on this member; start its replacement now unless `replace` is false. */
  #retire(member: Member, why: string, replace = true): void {
    // A halted one (a terminate waits to end it) is replaced already.
    if (member.retiring || member.dead || member.starts.halted) return;
    member.retiring = true;
    const g = member.group;
    g.members = g.members.filter((m) => m !== member);
    this.#retiring.add(member);
    log.debug("Retiring a Web Worker: {why}; it finishes {n} task(s)", { why, n: member.load });
    if (replace && !this.#closed) g.members.push(this.#spawn(g));
    if (member.load === 0) this.#dismiss(member);
  }

  #dismiss(member: Member): void {
    endMember(member);
    this.#retiring.delete(member);
  }

  /** Stop a member at once (its thread starts no more tasks) and forget the tasks it held. */
  #drop(member: Member, held: { started: number[]; notStarted: number[] }): void {
    endMember(member);
    this.#unread.drop(member);
    this.#retiring.delete(member);
    member.group.members = member.group.members.filter((m) => m !== member);
    for (const s of [...held.started, ...held.notStarted]) {
      this.#owner.delete(s);
      this.#limits.clear(s);
    }
  }

  /**
   * A Web Worker crashed, could not load the app, or task code ended it:
   * report the tasks it started lost and hand on those it had not (run on
   * another Web Worker; a revoked one is put back; all
   * lost when it never loaded the app: they would come back to the same
   * failure), replace it.
   */
  #fail(member: Member, reason: string): void {
    if (member.dead) return;
    // Halted by a terminate, it was replaced then.
    const wasRetiring = member.retiring || member.starts.halted;
    const split = haltAndSplit(member, this.#owner);
    const named = split.started.slice(0, 3).map((s) => this.#owner.get(s)!)
      .map((o) => `${o.task}[${o.id}]`);
    this.#drop(member, split);
    if (this.#closed) return;
    const lost = member.up ? split.started : [...split.started, ...split.notStarted];
    const back = member.up ? split.notStarted : [];
    const g = member.group;
    if (!member.up) g.failures++;
    const delay = member.up ? 0 : Math.min(30_000, 500 * 2 ** Math.min(g.failures, 6));
    logDeath(
      reason,
      lost,
      back,
      named,
      wasRetiring ? "it was already replaced" : `replacing it in ${delay} ms`,
    );
    const respawn = () => {
      if (!this.#closed && g.members.length < this.#target(g)) g.members.push(this.#spawn(g));
    };
    // One that ran tasks is replaced before they settle: a task handed on as they free slots finds it.
    if (!wasRetiring && delay === 0) respawn();
    else if (!wasRetiring) {
      const timer = setTimeout(() => this.#timers.delete(timer) && respawn(), delay);
      this.#timers.add(timer);
    }
    if (lost.length || back.length) this.#events.onLost(lost, reason, back);
  }

  #softLimit(seq: number, seconds: number): void {
    const o = this.#owner.get(seq);
    if (!o) return;
    logSoftTimeLimit(seconds, o);
    postTo(o.member, { type: "soft-time-limit", seq, seconds, task: o.task, id: o.id });
  }

  #hardLimit(seq: number, seconds: number): void {
    this.#kill(seq, seconds);
  }

  /**
   * Terminate the Web Worker running `seq` (at its hard time limit of
   * `seconds`, or with 0 for a revoke with terminate), replace it, report the
   * others it held: those it never started are handed on (run on another
   * Web Worker; a revoked one is put back; halted, its thread
   * never starts them, even running on); those it started are lost (they ran
   * there, and may still run on: run again, they would run twice); see
   * `terminate_report.ts`. Outcomes of its finished tasks that it posted are
   * read first: it is halted meanwhile, and ended even when `seq` finishes.
   */
  #kill(seq: number, seconds: number): void {
    // Outcomes written to its ring and not yet read first: those tasks finished, none is lost.
    this.#owner.get(seq)?.member.drain();
    const o = this.#owner.get(seq);
    // Its handler returned: nothing to stop, its outcome is on its way.
    if (!o || o.member.starts.hasFinished(seq)) return;
    // Revoked (marked before this) and not started: its Web Worker will not start it, as Celery
    // terminates no process for a task still waiting; its not-run outcome settles it. Asked for, it
    // is logged as Celery's "Terminating ID (signal)" is for a request not started too.
    if (
      seconds === 0 && o.member.starts.revoked(seq) && !o.started &&
      !o.member.starts.hasStarted(seq)
    ) {
      log.info(
        "Terminating {task}[{id}] (revoked with terminate): it had not started in its Web " +
          "Worker, which is kept; it will not run",
        { task: o.task, id: o.id },
      );
      return;
    }
    const { member } = o;
    // A task that starts while it waits would be lost: none does (what it says of them is ignored).
    for (const s of haltAndSplit(member, this.#owner).notStarted) this.#owner.get(s)!.back = true;
    // Halted, it takes no new task while it waits (one would only be handed on): its replacement does.
    if (member.group.members.includes(member)) {
      member.group.members = member.group.members.filter((m) => m !== member);
      this.#retiring.add(member);
      if (!this.#closed) member.group.members.push(this.#spawn(member.group));
    }
    const end = () => this.#end(member, seq, seconds, o);
    if (!this.#unread.defer(member, end)) end();
  }

  /** End a member halted by a terminate of `seq` (`run`) and report the tasks it held. */
  #end(member: Member, seq: number, seconds: number, run: Owned): void {
    // Ended meanwhile (it died, or another terminate of it), which reported them.
    if (member.dead) return;
    const split = haltAndSplit(member, this.#owner);
    const held = this.#owner.get(seq)?.member === member;
    this.#drop(member, split);
    const lost = split.started.filter((s) => s !== seq);
    const abandoned = split.notStarted.filter((s) => s !== seq);
    this.#threads.terminated(member.threads, run);
    // Past its hard limit it held its Web Worker that long: placed as such from now on, the next
    // task of its name is not given tasks to hold behind it while another Web Worker is free.
    if (seconds > 0) this.#blocking.observe(run.task, seconds * 1000);
    reportTerminate(this.#events, { ...run, seq, held }, seconds, lost, abandoned);
  }

  run(requests: RunRequest[]): void {
    const batches = new Map<Member, RunRequest[]>();
    let last: Member | undefined;
    for (const req of requests) {
      const group = this.#groupOf.get(req.task) ?? this.#groups[0];
      const ms = this.#blocking.ms(req.task);
      const lead = spreadLead(ms, this.#options.slots);
      const best = placeTask(group, last, lead, this.#options.slots);
      last = best;
      if (!best) {
        this.#events.onLost([req.seq], "no Web Worker is running (replacements are failing)");
        continue;
      }
      const work = ms ?? MESSAGE_BLOCKING_MS;
      best.load++;
      best.work += work;
      best.assigned++;
      this.#owner.set(req.seq, {
        member: best,
        task: req.task,
        id: req.id,
        work,
        limits: req.timeLimits,
        started: false,
      });
      if (req.timeLimits) this.#limits.expect(req.seq, req.timeLimits);
      let b = batches.get(best);
      if (!b) batches.set(best, b = []);
      b.push(req);
      if (this.#policy.full(best.assigned)) this.#retire(best, `it ran ${best.assigned} tasks`);
    }
    for (const [m, batch] of batches) {
      const refuse = (req: RunRequest, err: unknown) => this.#unsendable(m, req, err);
      for (const message of messagesOf(batch, (r) => this.#blocking.ms(r.task))) {
        postRun(m, message, refuse);
      }
    }
  }

  started(seq: number): boolean {
    const o = this.#owner.get(seq);
    // One marked `back` (not started at a terminate's halt) is handed on, whatever it writes.
    return o !== undefined && (o.started || (!o.back && o.member.starts.hasStarted(seq)));
  }

  /** A task that cannot be handed to its Web Worker is refused: parked with a FAILURE. */
  #unsendable(member: Member, req: RunRequest, err: unknown): void {
    this.#onOutcomes(member, [refusedOutcome(req, err)], undefined);
  }

  abort(seqs: number[]): void {
    const by = new Map<Member, number[]>();
    for (const s of seqs) {
      const m = this.#owner.get(s)?.member;
      if (m) by.set(m, [...(by.get(m) ?? []), s]);
    }
    for (const [m, list] of by) postTo(m, { type: "abort", seqs: list });
  }

  revoke(seqs: number[]): void {
    for (const seq of seqs) {
      const o = this.#owner.get(seq);
      const held = (s: number) => this.#owner.get(s)?.member === o?.member;
      if (!o || o.member.starts.revoke(seq, held)) continue;
      log.warn(
        "Revoked task {task}[{id}] may still run: its Web Worker holds another revoked task " +
          "in the same slot of its start table, and 64 more beside the slots",
        { task: o.task, id: o.id },
      );
    }
  }

  terminate(seqs: number[]): void {
    for (const s of seqs) this.#kill(s, 0);
  }

  close(): Promise<void> {
    this.#closed = true;
    // A terminate or time limit arriving now finds no task: nothing to report, no thread to watch.
    this.#owner.clear();
    this.#limits.clearAll();
    this.#threads.close();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#unread.close();
    for (const m of [...this.#groups.flatMap((g) => g.members), ...this.#retiring]) {
      endMember(m);
    }
    for (const g of this.#groups) g.members = [];
    this.#retiring.clear();
    return Promise.resolve();
  }
}
