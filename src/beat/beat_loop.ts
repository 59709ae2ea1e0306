/**
 * The beat scheduler's loop, behind `Beat` (beat.ts), which imports this
 * module when it starts: an app's tasks module (a Web Worker of each worker
 * imports one) only needs the `Beat` class. Any number of beat processes
 * may run; the one holding the store's lease sends, and it records every
 * run with a compare-and-set fenced by its lease token before publishing,
 * so a run is sent once even when two beats both believe they lead.
 *
 * @module
 */

import { lazyLogger } from "../client/lazy_logger.ts";
import type { Celery } from "../client/app.ts";
import { TaskArgumentsError } from "../client/errors.ts";
import { EncodeError } from "../protocol/errors.ts";
import type { ScheduleStore } from "../broker/schedule_store.ts";
import { compileEntry, type ScheduledEntry } from "./entry.ts";
import { checkEntryArgs } from "./entry_args.ts";
import { REMOVED, ScheduleEditor } from "./schedule_editor.ts";
import { decodeRunOwner, decodeRunState, encodeRunState } from "./run_state.ts";
import { foreignSchedule, scheduleOwner } from "./owner.ts";
import type { RunState } from "./schedules.ts";
import { CLOSE_WAIT_MS, closeWait, sleep, unlessAborted } from "../broker/sleep.ts";
import { afterGrace, stoppable } from "./store_guard.ts";
import { nextRunText, publishEntry } from "./beat_publish.ts";
import { StoreFaults } from "./store_faults.ts";
import { BeatLease } from "./beat_lease.ts";
import { maskPassword } from "../broker/errors.ts";

const log = lazyLogger(["celeriac", "beat"]);

/**
 * What a {@link BeatLoop} runs with: a `Beat`'s options, checked.
 *
 * @example
 * ```ts ignore
 * const settings: BeatSettings = { app, hostname: "beat-1", leaseMs: 15_000, maxMs: 5_000, signal };
 * ```
 */
export interface BeatSettings {
  /** The app: its broker receives the tasks, its config holds the schedule. */
  app: Celery;
  /** The beat's id in the lease and in logs. */
  hostname: string;
  /** How long a lease lasts without renewal, in ms. */
  leaseMs: number;
  /** Longest sleep between two looks at the schedule, in ms. */
  maxMs: number;
  /** Key namespace in the store; default the app's `beatNamespace`. */
  namespace?: string;
  /** The store; default the app's (`beatStore`, else its broker). */
  store?: ScheduleStore;
  /** Aborted to stop: the loop finishes its step and releases the lease. */
  signal: AbortSignal;
}

/** What happened to one due entry ("stopped": a stop gave up its publish). */
type SendOutcome = "sent" | "skipped" | "failed" | "lost" | "stopped";

/**
 * One beat's loop: holds the lease, sends what is due. `Beat` makes
 * one when it starts.
 *
 * @example
 * ```ts ignore
 * const loop = new BeatLoop({ app, hostname: "beat-1", leaseMs: 15_000, maxMs: 5_000, signal });
 * await loop.start();
 * await loop.finished; // once signal is aborted
 * ```
 */
export class BeatLoop {
  /** This beat's id in the lease and in logs. */
  readonly hostname: string;
  readonly #app: Celery;
  readonly #leaseMs: number;
  readonly #maxMs: number;
  readonly #namespace?: string;
  readonly #givenStore?: ScheduleStore;
  readonly #signal: AbortSignal;
  /**
   * Aborts {@link CLOSE_WAIT_MS} after the stop: the store call or publish under way is given up.
   * Made by each start (disposed when it fails: a stop after it leaves no timer behind).
   */
  #giveUp!: { signal: AbortSignal; dispose(): void };
  #store: ScheduleStore | null = null;
  #periodic: ScheduleEditor | null = null;
  #finished: Promise<void> = Promise.resolve();
  readonly #lease: BeatLease;
  #sent = 0;
  readonly #warnedUnregistered = new Set<string>();
  /** The stored run, by entry, last warned to be ahead of this clock. */
  readonly #warnedAhead = new Map<string, string>();
  readonly #faults = new StoreFaults();
  /** The leader this beat last warned runs another app's schedule. */
  #warnedForeign: string | null = null;

  /**
   * A loop, not started.
   *
   * @param settings the app, the beat's name, lease and interval, store and stop signal
   */
  constructor(settings: BeatSettings) {
    this.#app = settings.app;
    this.hostname = settings.hostname;
    this.#leaseMs = settings.leaseMs;
    this.#maxMs = settings.maxMs;
    this.#namespace = settings.namespace;
    this.#givenStore = settings.store;
    this.#signal = settings.signal;
    this.#lease = new BeatLease(settings.hostname, settings.leaseMs);
  }

  /** Whether this beat holds the lease now (and may send). */
  get isLeader(): boolean {
    return this.#lease.isLeader;
  }

  /** The fencing token of the lease this beat holds, or `null`. */
  get token(): number | null {
    return this.isLeader ? this.#lease.token : null;
  }

  /** How many tasks this beat sent. */
  get sent(): number {
    return this.#sent;
  }

  /** Settles when the beat has stopped and released its lease. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Check the app's schedule, open the store and start the loop. Resolves
   * once running (leader or not). The app's broker opens in the background
   * (a standby beat too), so that a takeover sends a missed run at once.
   *
   * @throws {BeatEntryError} for an entry of the app's `beatSchedule` that
   *   could never be sent (a typo'd option, a bad schedule, args/kwargs its
   *   serializer cannot encode or its task's handler here cannot take),
   *   before connecting
   * @throws {BeatStoreError} when the app has no usable store
   * @throws {BrokerConnectionError} when the store cannot be reached
   */
  async start(): Promise<void> {
    this.#giveUp = afterGrace(this.#signal, CLOSE_WAIT_MS);
    try {
      await this.#begin();
    } catch (err) {
      this.#giveUp.dispose();
      throw err;
    }
  }

  async #begin(): Promise<void> {
    const { beatSchedule, timezone } = this.#app.config;
    for (const [name, entry] of Object.entries(beatSchedule)) {
      await checkEntryArgs(this.#app, compileEntry(name, entry, timezone));
    }
    this.#periodic = new ScheduleEditor(this.#app, {
      namespace: this.#namespace,
      store: this.#givenStore,
    });
    let entries;
    try {
      this.#store = stoppable(await this.#periodic.store(), this.#giveUp.signal);
      entries = await this.#entries();
    } catch (err) {
      await this.#periodic.close();
      throw err;
    }
    // The broker the runs go out on opens now, in the background, on a standby beat too: one
    // that takes over a dead leader's lease sends the missed run at once, not after loading the
    // broker's module and connecting (CI at load 9: 592 ms from the takeover to the catch-up).
    // A broker down now is opened again by the first send; a stop aborts the open.
    this.#app.broker({ signal: this.#signal }).catch(() => {});
    log.info("beat: Starting {hostname}: {count} entries, lease {lease}s, store {store}", {
      hostname: this.hostname,
      count: entries.length,
      lease: this.#leaseMs / 1000,
      // Its query stays (global_keyprefix= is where the keys are), passwords masked.
      store: this.#givenStore ? "(given)" : maskPassword(this.#app.config.beatStore ?? ""),
    });
    this.#finished = this.#loop();
  }

  async #loop(): Promise<void> {
    const signal = this.#signal;
    try {
      while (!signal.aborted) {
        let wakeAt: number;
        try {
          wakeAt = await this.#step();
          this.#faults.stepDone();
        } catch (err) {
          if (signal.aborted) {
            if (!this.#giveUp.signal.aborted) break;
            log.warn(
              "beat: stopped while the schedule store did not answer: its call was given " +
                "up (a run being recorded is not sent; if the store recorded it, none sends it again)",
            );
            break;
          }
          this.#faults.stepFailed(err);
          wakeAt = Date.now() + Math.min(1000, this.#leaseMs / 5);
        }
        await sleep(Math.max(0, wakeAt - Date.now()), signal);
      }
    } finally {
      this.#giveUp.dispose();
      await this.#shutdown();
    }
  }

  /** The entries in force (the app's config alone while the run-time entries' key is wrong). */
  #entries(): Promise<ScheduledEntry[]> {
    return this.#faults.entries(() => this.#periodic!.entries(), this.#app.config);
  }

  async #shutdown(): Promise<void> {
    const token = this.#lease.token;
    if (token !== null && this.#store) {
      await this.#store.release(this.hostname, token); // at most 2 s, as the close
      this.#lease.drop();
    }
    if (this.#periodic) await closeWait(this.#periodic.close());
    log.info("beat: {hostname} stopped after sending {sent} task(s)", {
      hostname: this.hostname,
      sent: this.#sent,
    });
  }

  /** One wake-up: hold the lease, send what is due; resolves with when to wake next. */
  async #step(): Promise<number> {
    const store = this.#store!;
    if (this.#lease.due(Date.now())) {
      const asked = Date.now();
      const token = await store.acquire(this.hostname, this.#leaseMs, (broken) =>
        log.warn(
          "beat: the lease {key} held {value}, which no beat could ever take or renew ({why}): " +
            "{hostname} took it over",
          { ...broken, value: JSON.stringify(broken.value), hostname: this.hostname },
        ));
      this.#lease.acquired(token, asked);
    }
    if (!this.isLeader) {
      this.#lease.drop();
      // Wake when the holder's lease runs out (unless renewed meanwhile), so
      // that a dead leader is replaced as soon as its lease expires.
      const held = await store.lease();
      this.#lease.standBy(held);
      if (held && held.holder !== this.#warnedForeign) await this.#checkForeign(held.holder);
      const wait = held ? held.ttlMs + 10 : 50;
      return Date.now() + Math.min(this.#maxMs, wait);
    }
    const next = await this.#tick();
    return Math.min(next, this.#lease.renewAt, Date.now() + this.#maxMs);
  }

  /** Send every due entry; resolves with the earliest next due time. */
  async #tick(): Promise<number> {
    const store = this.#store!;
    const [entries, runs] = await Promise.all([this.#entries(), store.readRuns()]);
    const owner = scheduleOwner(Object.keys(this.#app.config.beatSchedule), runs);
    await this.#forgetGone(entries, runs, owner);
    let earliest = Infinity;
    for (const entry of entries) {
      if (!this.isLeader || this.#giveUp.signal.aborted) break;
      let raw = runs.get(entry.name);
      let state = decodeRunState(raw);
      // A last run further ahead than a lease (a former leader's clock ran fast, this host's
      // stepped back) would silence an interval entry until the clock gets there: it counts as
      // now. A crontab or at entry keeps it, as Celery's beat does: from now, its next slot
      // would be the one that ran.
      const ahead = state !== null && state.lastRunAt > Date.now() + this.#leaseMs;
      if (state === null || (ahead && entry.schedule.kind === "interval")) {
        const fresh: RunState = { lastRunAt: Date.now(), totalRunCount: state?.totalRunCount ?? 0 };
        const text = encodeRunState(fresh, owner);
        const outcome = await store.commitRun(
          this.hostname,
          this.#lease.token!,
          entry.name,
          raw ?? null,
          text,
        );
        if (outcome === "lost") return this.#lease.lost();
        if (outcome === "conflict") continue;
        if (ahead) {
          log.warn(
            'beat: entry "{entry}" last ran at {lastRunAt} by its store, more than the lease time ' +
              "ahead of this host's clock (a clock set wrong, on this host or a former leader's): " +
              "taken as now, {now}",
            {
              entry: entry.name,
              lastRunAt: new Date(state!.lastRunAt).toISOString(),
              now: new Date(fresh.lastRunAt).toISOString(),
            },
          );
        }
        state = fresh;
        raw = text;
      } else if (ahead) {
        this.#warnAhead(entry, state, raw!);
      }
      const due = entry.schedule.nextRunAt(state);
      if (due === null) continue;
      const now = Date.now();
      if (now < due) {
        earliest = Math.min(earliest, due);
        continue;
      }
      const outcome = await this.#send(entry, state, raw!, due, now, owner);
      if (outcome === "lost") return this.#lease.lost();
      if (outcome === "stopped") break;
      const after = entry.schedule.nextRunAt(entry.schedule.afterRun(state, due, now));
      if (after !== null) earliest = Math.min(earliest, after);
    }
    return earliest;
  }

  /**
   * Drop the last run of entries no longer in the schedule (gone from the
   * code), as Celery's beat drops them from its schedule file: an entry given
   * again later starts afresh, not with a catch-up for a slot missed long ago.
   * Only those this app's schedule ran (`owner`): another app sharing the
   * namespace by mistake keeps its own.
   */
  async #forgetGone(
    entries: ScheduledEntry[],
    runs: Map<string, string>,
    owner: string,
  ): Promise<void> {
    const names = new Set(entries.map((e) => e.name));
    const gone = [...runs].filter(([name, raw]) =>
      !names.has(name) && decodeRunOwner(raw) === owner
    );
    // A stored entry skipped as invalid (its JSON corrupt) keeps its last run, for when it is fixed.
    let stored = new Map<string, string>();
    if (gone.length) {
      // Unreadable (a key of the wrong type): entries added at run time would count as gone.
      if (this.#faults.entriesUnreadable) return;
      stored = await this.#store!.readEntries();
    }
    for (const [name] of gone) {
      const raw = stored.get(name);
      if ((raw !== undefined && raw !== REMOVED) || !this.isLeader) continue;
      await this.#store!.deleteRun(name);
      log.info('beat: forgot the last run of "{entry}", which is no longer in the schedule', {
        entry: name,
      });
    }
  }

  /**
   * Warn (once per leader) when the leader runs another app's schedule: two
   * apps share the namespace, and this app's entries would never run.
   */
  async #checkForeign(leader: string): Promise<void> {
    const names = Object.keys(this.#app.config.beatSchedule);
    if (!foreignSchedule(names, await this.#store!.readRuns())) return;
    this.#warnedForeign = leader;
    log.warn(
      "beat: {leader} leads namespace {namespace} with a different schedule: none of this " +
        "app's entries ({entries}) runs there, and they will not run while it leads. Two apps " +
        "share this store: give each its own beatNamespace (new Celery({ ..., beatNamespace: " +
        '"myapp.beat." }))',
      {
        leader,
        namespace: this.#namespace ?? this.#app.config.beatNamespace,
        entries: names.join(", "),
      },
    );
  }

  /** Warn once per stored run that a crontab or at entry's last run is ahead of this clock. */
  #warnAhead(entry: ScheduledEntry, state: RunState, raw: string): void {
    if (this.#warnedAhead.get(entry.name) === raw) return;
    this.#warnedAhead.set(entry.name, raw);
    log.warn(
      'beat: entry "{entry}" last ran at {lastRunAt} by its store, more than the lease time ' +
        "ahead of this host's clock (a clock set wrong or stepped back, on this host or a former " +
        "leader's): its slots up to that run count as sent, as in Celery's beat; next run {next}",
      {
        entry: entry.name,
        lastRunAt: new Date(state.lastRunAt).toISOString(),
        next: nextRunText(entry.schedule.nextRunAt(state)),
      },
    );
  }

  /** Record the run under the lease, then publish it. */
  async #send(
    entry: ScheduledEntry,
    state: RunState,
    raw: string,
    due: number,
    now: number,
    owner: string,
  ): Promise<SendOutcome> {
    const store = this.#store!;
    const after = entry.schedule.afterRun(state, due, now);
    const next = encodeRunState(after, owner);
    if (!this.isLeader) return "lost";
    const outcome = await store.commitRun(this.hostname, this.#lease.token!, entry.name, raw, next);
    if (outcome === "lost") return "lost";
    if (outcome === "conflict") return "skipped";
    const nextRun = entry.schedule.nextRunAt(after);
    let id: string;
    try {
      // A stop gives up a publish still unanswered 2 s later (a stalled broker): stop() does not
      // wait for the broker, which may take minutes (TCP's own timeout) to fail it.
      id = await unlessAborted(
        publishEntry(this.#app, entry, this.#warnedUnregistered),
        this.#giveUp.signal,
      );
    } catch (err) {
      if (this.#giveUp.signal.aborted) {
        log.warn(
          'beat: stopped while sending entry "{entry}" ({task}): its publish was given up ' +
            "before the broker confirmed it, so this run is not sent (a message the broker had " +
            "received already still reaches its queue); the run was recorded before the " +
            "publish, so no beat sends it again: next run {next}",
          { entry: entry.name, task: entry.task, next: nextRunText(nextRun) },
        );
        return "stopped";
      }
      // As Celery's beat: the run stays recorded (a run given back and sent again could
      // reach the broker twice, and a publish that always fails would be tried forever).
      // Arguments its task's handler here cannot take, or that its serializer cannot encode (a
      // run-time entry stored by a program that did not check them), fail before the publish.
      const why = err instanceof TaskArgumentsError || err instanceof EncodeError
        ? "cannot be sent (fix the entry's args/kwargs)"
        : "failed after the publish retries";
      log.error(
        `beat: sending entry "{entry}" ({task}) ${why}; the run is dropped, as Celery's beat ` +
          "drops it, next run {next}: {error}",
        {
          entry: entry.name,
          task: entry.task,
          next: nextRunText(nextRun),
          error: (err as Error).message,
        },
      );
      return "failed";
    }
    this.#sent++;
    log.info(
      "Scheduler: Sending due task {entry} ({task}) id {id}, next run {next}",
      {
        entry: entry.name,
        task: entry.task,
        id,
        next: nextRunText(nextRun),
      },
    );
    return "sent";
  }
}
