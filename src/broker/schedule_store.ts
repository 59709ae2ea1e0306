/**
 * The schedule-store port: what the beat scheduler needs from a server so
 * that any number of beat processes send each run exactly once — a leader
 * lease with a fencing token, last-run states changed only by compare-and-set
 * under that lease, and the entries added at run time. Redis and Deno KV
 * provide it; RabbitMQ cannot (no compare-and-set), so beat on an
 * `amqp://` broker keeps its store on Redis or KV.
 *
 * Values are opaque strings (beat stores JSON); the store knows nothing of
 * schedules.
 *
 * @module
 */

/**
 * The outcome of {@link ScheduleStore.commitRun}.
 *
 * - `ok`: the state was written.
 * - `conflict`: the stored state was not the expected one (another beat ran
 *   the entry); nothing was written.
 * - `lost`: the caller no longer holds the lease with that token; nothing
 *   was written.
 *
 * @example
 * ```ts
 * import type { CommitOutcome } from "@celeriac/celeriac/protocol";
 * const shouldSend = (o: CommitOutcome) => o === "ok";
 * ```
 */
export type CommitOutcome = "ok" | "conflict" | "lost";

/**
 * Who holds the lease.
 *
 * @example
 * ```ts
 * import type { LeaseInfo } from "@celeriac/celeriac/protocol";
 * const show = (l: LeaseInfo | null) => l ? `${l.holder} (token ${l.token})` : "no leader";
 * ```
 */
export interface LeaseInfo {
  /** The holder's id (beat's node name and a random suffix). */
  holder: string;
  /** The fencing token: grows with every new lease. */
  token: number;
  /** Milliseconds until the lease expires unless renewed. */
  ttlMs: number;
}

/**
 * A lease found in the store that no beat could ever take or renew, which
 * {@link ScheduleStore.acquire} took over (and reports).
 *
 * @example
 * ```ts
 * import type { BrokenLease } from "@celeriac/celeriac/protocol";
 * const say = (b: BrokenLease) => `${b.key} held ${JSON.stringify(b.value)}: ${b.why}`;
 * ```
 */
export interface BrokenLease {
  /** Where the lease is stored (the Redis key, or the KV key joined with `/`). */
  key: string;
  /** What it held, as text. */
  value: string;
  /** Why it could not be a live lease, e.g. `it has no expiry`. */
  why: string;
}

/**
 * The store. One per beat process; several processes share the data.
 *
 * @example Acquiring the lease and recording a run under it
 * ```ts
 * import { openScheduleStore } from "@celeriac/celeriac/protocol";
 * const store = await openScheduleStore("redis://127.0.0.1:6379/0");
 * const token = await store.acquire("beat@host-1a2b", 15_000);
 * if (token !== null) {
 *   const outcome = await store.commitRun("beat@host-1a2b", token, "tick", null, '{"lastRunAt":0}');
 *   if (outcome === "ok") console.log("this beat sends tick");
 * }
 * ```
 */
export interface ScheduleStore {
  /**
   * Take the lease when it is free, or renew it when `holder` has it.
   * Resolves with the fencing token, or `null` when another holder has it.
   * A new lease gets a token greater than every earlier one.
   *
   * A lease that cannot be read, or that would never expire (a Redis key
   * without a TTL, a KV record expiring further ahead than any lease time),
   * counts as free: it is taken over, and `onBroken` (default none) is told
   * what was found.
   */
  acquire(
    holder: string,
    ttlMs: number,
    onBroken?: (found: BrokenLease) => void,
  ): Promise<number | null>;
  /** Give the lease up, if `holder` still has it with `token`. */
  release(holder: string, token: number): Promise<void>;
  /** The current lease, or `null` when none is held. */
  lease(): Promise<LeaseInfo | null>;
  /** Every stored run state, by entry name. */
  readRuns(): Promise<Map<string, string>>;
  /**
   * Replace the run state of `entry` with `next`, atomically checking that
   * `holder` holds the lease with `token` and that the stored state is
   * still `expected` (`null`: none stored).
   */
  commitRun(
    holder: string,
    token: number,
    entry: string,
    expected: string | null,
    next: string,
  ): Promise<CommitOutcome>;
  /** Forget the run state of an entry (after the entry is removed). */
  deleteRun(entry: string): Promise<void>;
  /** The entries stored at run time, by name. */
  readEntries(): Promise<Map<string, string>>;
  /** Store (add or replace) a run-time entry. */
  putEntry(name: string, value: string): Promise<void>;
  /** Delete a run-time entry; resolves with whether it existed. */
  deleteEntry(name: string): Promise<boolean>;
  /** Close the store's connection. */
  close(): Promise<void>;
}

/**
 * Options of the schedule stores.
 *
 * @example
 * ```ts
 * import type { ScheduleStoreOptions } from "@celeriac/celeriac/protocol";
 * const options: ScheduleStoreOptions = { namespace: "celeriac.beat.billing." };
 * ```
 */
export interface ScheduleStoreOptions {
  /**
   * Key namespace, so several independent schedules can share a server.
   * Default `celeriac.beat.` (Redis keys `celeriac.beat.lease`, ...; KV keys
   * under `[prefix, "celeriac.beat."]`).
   */
  namespace?: string;
  /**
   * Aborts opening: what was opened is closed (on KV, the database is
   * released) and the open rejects with the signal's reason (at once,
   * opening nothing, when it already aborted). Default: none.
   */
  signal?: AbortSignal;
}

/** The default key namespace of {@link ScheduleStoreOptions.namespace}. */
export const DEFAULT_BEAT_NAMESPACE = "celeriac.beat.";

/** What beat keeps in each of its store keys. */
export type ScheduleKeyRole = "lease" | "fence" | "runs" | "entries";

/**
 * A store key of beat's namespace holds a value beat cannot use (a Redis
 * `WRONGTYPE` reply: a hash where the lease string should be, a string where
 * the runs hash should be; a fencing counter that is not an integer). The
 * store answers, so this is not an outage: waiting does not fix it. The
 * message names the key and how to repair it.
 *
 * @example
 * ```ts
 * import { openScheduleStore, ScheduleStoreKeyError } from "@celeriac/celeriac/protocol";
 * const store = await openScheduleStore("redis://127.0.0.1:6379/0");
 * try {
 *   await store.readRuns();
 * } catch (err) {
 *   if (err instanceof ScheduleStoreKeyError) console.error(err.key, err.role, err.message);
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export class ScheduleStoreKeyError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BEAT_STORE_KEY_WRONG";
  /** The key at fault, e.g. `celeriac.beat.runs`. */
  readonly key: string;
  /** What beat keeps in it. */
  readonly role: ScheduleKeyRole;

  /**
   * Describe a key holding the wrong kind of value.
   *
   * @param key the key
   * @param role what beat keeps in it
   * @param found what it holds, e.g. `a string`, `the string "oops"`
   * @param cause the store's error
   */
  constructor(key: string, role: ScheduleKeyRole, found: string, cause: unknown) {
    super(
      `schedule store key ${key} holds ${found}, not ${KEY_CONTENT[role]} (${
        (cause as Error)?.message ?? cause
      }): something other than beat wrote it. Delete it (DEL ${key} in the store's Redis ` +
        `database; ${AFTER_DELETE[role]}), or give this app its own beatNamespace`,
      { cause },
    );
    this.name = "ScheduleStoreKeyError";
    this.key = key;
    this.role = role;
  }
}

/** What beat keeps in each key, as the error says it. */
const KEY_CONTENT: Record<ScheduleKeyRole, string> = {
  lease: "the lease beat keeps there (a string `holder\\ntoken`)",
  fence: "the fencing counter beat keeps there (an integer string)",
  runs: "the last runs beat keeps there (a hash)",
  entries: "the entries added at run time beat keeps there (a hash)",
};

/** What deleting each key costs. */
const AFTER_DELETE: Record<ScheduleKeyRole, string> = {
  lease: "a beat then takes the lease",
  fence: "the fencing tokens then count from 1 again",
  runs: "every entry then starts afresh: an interval one interval on, a crontab at its next time",
  entries: "add the entries added at run time again with `schedule add`",
};
