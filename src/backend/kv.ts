/**
 * The Deno KV result backend: task metas in the same database as the KV
 * broker (or any other `kv://` database), under
 * `[...ns, "celery-task-meta", taskId]`.
 *
 * Each value holds the meta JSON text exactly as Celery stores it, with its
 * status and expiry time beside it: Deno KV deletes expired keys only about
 * once a minute, so reads ignore a value whose time has passed (storage is
 * in kv_meta_store.ts). Waiting is
 * push-based, through the same change notification as the KV broker
 * (in-process notification plus a watch of the `-wal` file for other processes).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { FailureStreak } from "../broker/failure_streak.ts";
import { DEFAULT_OUTAGE_LIMIT, retryWhileDown } from "../broker/outage.ts";
import { sleep } from "../broker/sleep.ts";
import {
  commitAtomic,
  kvNamespace,
  openSharedKv,
  parseKvUrl,
  type SharedKv,
} from "../broker/kv_store.ts";
import { decodeResultMeta, READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import { EncodeError, ProtocolError } from "../protocol/errors.ts";
import type { ChordMember } from "../protocol/signature.ts";
import { KvChords } from "./kv_chord.ts";
import {
  KV_MAX_RESULT_BYTES,
  KvMetaStore,
  live,
  metaBytes,
  type StoredResult,
} from "./kv_meta_store.ts";
import type { ChordFailure, ChordPart, ResultBackend, StoreEntry } from "./port.ts";
import { checkResultExpires } from "./result_expires.ts";
import { type ResultWaiter, ResultWaiters } from "./result_waiters.ts";
import { storedOnAbort } from "./stored_on_abort.ts";

const log = getLogger(["celeriac", "backend", "kv"]);

/** Waits re-check at least this often; only a fallback against lost notifications. */
const SAFETY_RECHECK_MS = 1000;

/**
 * Options of {@link openKvBackend}.
 *
 * @example A KV backend that keeps results for an hour
 * ```ts
 * import { type KvBackendOptions, openKvBackend } from "@celeriac/celeriac/transports";
 * const options: KvBackendOptions = { resultExpires: 3600, prefix: ["billing"] };
 * const backend = await openKvBackend("kv://:memory:", options);
 * await backend.get(crypto.randomUUID()); // null: nothing stored
 * await backend.close();
 * ```
 */
export interface KvBackendOptions {
  /**
   * Seconds a result is kept (Celery `result_expires`), rounded up to
   * whole milliseconds; 0 keeps it forever. Default 86400.
   */
  resultExpires?: number;
  /** Key namespace (URL `prefix=<name>` gives `[name]` and overrides it). Default `["celeriac"]`. */
  prefix?: readonly string[];
  /**
   * Seconds a result store is retried while the file cannot be written (its
   * disk full, an I/O error, read-only: a transient `BrokerConnectionError`),
   * as the Redis backend rides out an outage. Default 300.
   */
  outageRetryLimit?: number;
  /**
   * Aborts opening: the database is released and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
}

/**
 * A result backend in Deno KV.
 *
 * @example
 * ```ts
 * import { encodeResultMeta } from "@celeriac/celeriac/protocol";
 * import { openKvBackend } from "@celeriac/celeriac/transports";
 * const backend = await openKvBackend("kv://:memory:");
 * const taskId = crypto.randomUUID();
 * const waiting = backend.waitFor(taskId, AbortSignal.timeout(5000));
 * await backend.store([{
 *   taskId,
 *   status: "SUCCESS",
 *   meta: encodeResultMeta({ taskId, status: "SUCCESS", result: 5, dateDone: new Date() }),
 * }]);
 * console.assert((await waiting).result === 5);
 * await backend.close();
 * ```
 */
export class KvBackend implements ResultBackend {
  /** Always `kv`. */
  readonly transport = "kv";
  readonly #shared: SharedKv;
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #expiresMs: number;
  readonly #closing = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  readonly #waiters = new ResultWaiters();
  /** The versionstamp of the stored entry each following wait was last handed. */
  readonly #told = new WeakMap<ResultWaiter, string>();
  #watching: Promise<void> | null = null;
  readonly #watchFailures = new FailureStreak({
    failing: (error) => log.warn("Cannot read results, trying again: {error}", { error }),
    recovered: (failures) =>
      log.info("Reading results again after {failures} failed read(s)", { failures }),
  }, { maxMs: SAFETY_RECHECK_MS });
  #closed = false;
  readonly #chords: KvChords;
  readonly #metas: KvMetaStore;
  readonly #outageLimit: number;

  /**
   * Use {@link openKvBackend}.
   *
   * @param shared the open database reference; the backend releases it on close
   * @param options resolved settings
   */
  constructor(shared: SharedKv, options: Required<Omit<KvBackendOptions, "signal">>) {
    this.#shared = shared;
    this.#kv = shared.kv;
    this.#ns = [...options.prefix];
    this.#outageLimit = options.outageRetryLimit;
    // Deno KV's expireIn takes whole milliseconds; rounded up, a fraction never keeps forever.
    this.#expiresMs = Math.ceil(options.resultExpires * 1000);
    this.#metas = new KvMetaStore(this.#kv, this.#ns, this.#expiresMs);
    this.#chords = new KvChords(this.#kv, this.#ns, this.#expiresMs, this.#metas);
  }

  #key(taskId: string): Deno.KvKey {
    return this.#metas.key(taskId);
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new Error("This KV result backend is closed: open a new one with openKvBackend()");
    }
    const p = fn();
    const done = () => this.#busy.delete(p);
    this.#busy.add(p);
    p.then(done, done);
    return await p;
  }

  /**
   * Store metas (with the configured expiry) and wake waiters. A stored
   * SUCCESS is never replaced.
   *
   * Metas longer than {@link KV_VALUE_BYTES} are split across several entries.
   * While the file cannot be written (disk full, I/O error, read-only) the
   * store is retried with backoff for `outageRetryLimit` seconds (it is
   * idempotent), or until {@link KvBackend.close}.
   *
   * @throws {BrokerConnectionError} when the file still cannot be written after that
   * @throws {EncodeError} when a meta is larger than {@link KV_MAX_RESULT_BYTES}
   */
  async store(entries: readonly StoreEntry[]): Promise<void> {
    for (const e of entries) {
      const size = metaBytes(e.meta);
      if (size > KV_MAX_RESULT_BYTES) {
        throw new EncodeError(
          `The result of task ${e.taskId} is ${size} bytes, over the KV backend's limit of ` +
            `${KV_MAX_RESULT_BYTES} bytes. Return a reference to large data (a file name, an ` +
            `object-store key) instead of the data, or use the Redis backend (redis://)`,
        );
      }
    }
    await this.#run(async () => {
      await retryWhileDown(() => this.#metas.storeAll(entries), {
        limit: this.#outageLimit,
        what: `store ${entries.length} result(s)`,
        signal: this.#closing.signal,
      });
      this.#shared.notify();
    });
    this.#settleStored(entries);
  }

  /** Settle this backend's waiters for the ready ones among metas just stored. */
  #settleStored(entries: readonly StoreEntry[]): void {
    for (const e of entries) {
      if (READY_STATES.has(e.status)) this.#settle(e.taskId, decodeResultMeta(e.meta));
    }
  }

  /** Read the current meta; `null` means PENDING (nothing stored, or expired). */
  async get(taskId: string): Promise<ResultMeta | null> {
    const key = this.#key(taskId);
    return await this.#run(async () => {
      const value = this.#metas.checked(taskId, await this.#kv.get(key));
      if (value === null) return null;
      const meta = await this.#metas.metaOf(taskId, value);
      return meta === null ? null : decodeResultMeta(meta);
    });
  }

  /**
   * Wait until the task is SUCCESS, FAILURE or REVOKED. Rejects with
   * `signal.reason` on abort, or with an `AbortError` when the backend closes.
   *
   * Results stored by this backend settle their waiters at once; changes by
   * other processes are found by one re-check of every pending task per
   * change notification. An abort ends the wait; a ready result stored by
   * then is still read and returned. `onState` is told each state stored
   * meanwhile once (a re-check that reads the same stored entry again, by
   * its versionstamp, tells nothing); states stored in quick succession
   * between two re-checks may be told as the latest alone.
   */
  waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta> {
    return storedOnAbort(
      taskId,
      signal,
      (s) => this.#wait(taskId, s, onState),
      () => this.get(taskId),
      onState,
    );
  }

  async #wait(
    taskId: string,
    signal: AbortSignal | undefined,
    onState: ((meta: ResultMeta) => void) | undefined,
  ): Promise<ResultMeta> {
    const key = this.#key(taskId);
    signal?.throwIfAborted();
    if (this.#closed) throw this.#closing.signal.reason;
    const { promise, resolve, reject } = Promise.withResolvers<ResultMeta>();
    // An abort during the first read rejects `promise` before it is awaited:
    // observed below, not an unhandled rejection.
    promise.catch(() => {});
    const waiter: ResultWaiter = { resolve, reject, onState };
    this.#waiters.add(taskId, waiter);
    const onAbort = () => {
      this.#waiters.drop(taskId, waiter);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#watch();
    try {
      // Tracked as busy: a close() meanwhile waits for this read instead of
      // releasing the database under it ("Database is closed.").
      await this.#run(async () =>
        this.#report(taskId, await this.#kv.get<StoredResult>(key), waiter)
      );
      return await promise;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#waiters.drop(taskId, waiter);
    }
  }

  /**
   * Settle a task's waiters when its stored entry is ready, else hand its
   * state to followers (to `only`, the wait whose first read it is, when
   * given). An entry that cannot be read (not a stored result, a meta that
   * is not JSON) rejects the waiters with that error; any other error (a
   * failed read) is thrown, and the watch loop reads again after a pause.
   */
  async #report(
    taskId: string,
    entry: { value: StoredResult | null; versionstamp: string | null },
    only?: ResultWaiter,
  ): Promise<void> {
    try {
      await this.#reportRead(taskId, entry, only);
    } catch (err) {
      if (!(err instanceof ProtocolError || err instanceof SyntaxError)) throw err;
      for (const w of only ? [only] : [...this.#waiters.take(taskId)]) w.reject(err);
    }
  }

  async #reportRead(
    taskId: string,
    entry: { value: StoredResult | null; versionstamp: string | null },
    only?: ResultWaiter,
  ): Promise<void> {
    const { value, versionstamp } = entry;
    const ready = await this.#metas.readyMeta(taskId, entry);
    if (ready) this.#settle(taskId, ready);
    else if (live(value) && versionstamp !== null) {
      const meta = await this.#metas.metaOf(taskId, value);
      if (meta !== null) {
        this.#progress(only ? [only] : this.#waiters.of(taskId), meta, versionstamp);
      }
    }
  }

  /**
   * Hand a state stored before the ready one to the waiters that follow
   * states and were not handed this stored entry (its versionstamp) yet.
   * A listener that throws rejects its own wait only.
   */
  #progress(waiters: Iterable<ResultWaiter>, raw: string, versionstamp: string): void {
    const followers = [...waiters].filter((w) => w.onState && this.#told.get(w) !== versionstamp);
    if (followers.length === 0) return;
    const meta = decodeResultMeta(raw);
    for (const w of followers) {
      this.#told.set(w, versionstamp);
      try {
        w.onState!(meta);
      } catch (err) {
        w.reject(err);
      }
    }
  }

  #settle(taskId: string, meta: ResultMeta): void {
    for (const w of this.#waiters.take(taskId)) w.resolve(meta);
  }

  /**
   * One loop per backend re-reads pending tasks after each change
   * notification. After a failed read it pauses (100 ms, doubling up to
   * {@link SAFETY_RECHECK_MS}) and reads again, logging once per streak of
   * failures and once when reads succeed again.
   */
  #watch(): void {
    if (this.#watching) return;
    const loop = async () => {
      while (this.#waiters.size > 0 && !this.#closed) {
        const seen = this.#shared.version;
        try {
          await this.#recheck();
        } catch (err) {
          if (this.#closed) return;
          await sleep(this.#watchFailures.failed(err), this.#closing.signal);
          continue;
        }
        this.#watchFailures.succeeded();
        await this.#shared.changed(seen, SAFETY_RECHECK_MS, this.#closing.signal);
      }
    };
    this.#watching = loop().finally(() => {
      this.#watching = null;
      if (this.#waiters.size > 0 && !this.#closed) this.#watch();
    });
  }

  async #recheck(): Promise<void> {
    const ids = [...this.#waiters.taskIds()];
    for (let i = 0; i < ids.length; i += 10) {
      const chunk = ids.slice(i, i + 10);
      const found = await this.#kv.getMany<StoredResult[]>(chunk.map((id) => this.#key(id)));
      for (let j = 0; j < found.length; j++) await this.#report(chunk[j], found[j]);
    }
  }

  /** Delete a stored result. */
  async forget(taskId: string): Promise<void> {
    const key = this.#key(taskId);
    await this.#run(async () => {
      const { value } = await this.#kv.get<StoredResult>(key);
      await commitAtomic(this.#kv.atomic().delete(key));
      if (value) await this.#metas.deleteParts(taskId, value);
    });
  }

  /** Store a chord's size before its header is sent. */
  setChordSize(groupId: string, size: number): Promise<void> {
    return this.#run(() => this.#chords.setChordSize(groupId, size));
  }

  /**
   * Record a chord header member; exactly one caller gets the members, in
   * header order. A spoiled chord's failure is stored by the commit that
   * claims it, and its waiters woken.
   */
  async chordPartReturn(part: ChordPart, failure?: ChordFailure): Promise<ChordMember[] | null> {
    let stored: StoreEntry[] = [];
    const storing = failure && ((err: ProtocolError) => stored = failure(err));
    try {
      return await this.#run(() => this.#chords.partReturn(part, storing));
    } catch (err) {
      // Rejected after the failure was asked for: the claim stored it.
      if (err instanceof ProtocolError && stored.length) {
        this.#shared.notify();
        this.#settleStored(stored);
      }
      throw err;
    }
  }

  /** Delete a chord's join bookkeeping. */
  chordCleanup(groupId: string): Promise<void> {
    return this.#run(() => this.#chords.cleanup(groupId));
  }

  /** Store a group meta. */
  saveGroup(groupId: string, meta: string): Promise<void> {
    return this.#run(() => this.#chords.saveGroup(groupId, meta));
  }

  /** Read a saved group meta. */
  restoreGroup(groupId: string): Promise<string | null> {
    return this.#run(() => this.#chords.restoreGroup(groupId));
  }

  /** Delete a saved group meta. */
  forgetGroup(groupId: string): Promise<void> {
    return this.#run(() => this.#chords.forgetGroup(groupId));
  }

  /**
   * End pending waits (they reject with an `AbortError`) and release the
   * database (closed when no other broker or backend of this process uses it).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new DOMException("The KV result backend was closed", "AbortError");
    this.#closing.abort(closed);
    this.#waiters.rejectAll(closed);
    await Promise.allSettled([...this.#busy, this.#watching]);
    await this.#shared.release();
  }
}

/**
 * Open a result backend on a Deno KV database (`kv://file.sqlite`,
 * `kv:///abs/path.sqlite` or `kv://:memory:`); the same URL as a KV broker
 * shares its database.
 *
 * @example
 * ```ts
 * import { openKvBackend } from "@celeriac/celeriac/transports";
 * const backend = await openKvBackend("kv://:memory:", { resultExpires: 3600 });
 * console.assert(await backend.get("unknown-id") === null);
 * await backend.close();
 * ```
 *
 * @param url the backend URL (`visibility_timeout` is accepted and ignored)
 * @param options backend options
 * @returns an open backend
 * @throws {TypeError} when the URL is not a `kv://` URL
 * @throws {RangeError} when `resultExpires` is negative, NaN or infinite, or the prefix is empty
 * @throws {BrokerConnectionError} when the database cannot be opened
 */
export async function openKvBackend(
  url: string,
  options: KvBackendOptions = {},
): Promise<KvBackend> {
  options.signal?.throwIfAborted();
  const parsed = parseKvUrl(url);
  const resultExpires = checkResultExpires(options.resultExpires ?? 86400);
  const prefix = kvNamespace(parsed, options.prefix);
  const shared = await openSharedKv(parsed.path, url, options.signal);
  return new KvBackend(shared, {
    resultExpires,
    prefix,
    outageRetryLimit: options.outageRetryLimit ?? DEFAULT_OUTAGE_LIMIT,
  });
}
