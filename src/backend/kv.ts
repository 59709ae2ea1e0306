/**
 * The Deno KV result backend: task metas in the same database as the KV
 * broker (or any other `kv://` database), under
 * `[...ns, "celery-task-meta", taskId]`.
 *
 * Each value holds the meta JSON text exactly as Celery stores it, with its
 * status and expiry time beside it: Deno KV deletes expired keys only about
 * once a minute, so reads ignore a value whose time has passed. Waiting is
 * push-based, through the same change notification as the KV broker
 * (in-process notification plus a directory watch for other processes).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { commitAtomic, openSharedKv, parseKvUrl, type SharedKv } from "../broker/kv_store.ts";
import {
  decodeResultMeta,
  READY_STATES,
  type ResultMeta,
  type TaskState,
} from "../protocol/result_meta.ts";
import { EncodeError } from "../protocol/errors.ts";
import type { ChordMember } from "../protocol/signature.ts";
import { KvChords } from "./kv_chord.ts";
import type { ChordPart, ResultBackend, StoreEntry } from "./port.ts";

const log = getLogger(["celeriac", "backend", "kv"]);

/**
 * The longest result meta the KV backend stores, in bytes of JSON text:
 * 32 MiB. Deno KV stores at most 64 KiB per value, so a meta longer than
 * {@link KV_VALUE_BYTES} is split across several entries.
 *
 * @example
 * ```ts
 * import { KV_MAX_RESULT_BYTES } from "@celeriac/celeriac/transports";
 * console.assert(KV_MAX_RESULT_BYTES === 32 * 1024 * 1024);
 * ```
 */
export const KV_MAX_RESULT_BYTES = 32 * 1024 * 1024;

/**
 * The longest meta stored in one Deno KV value (which holds at most 64 KiB);
 * longer ones are split into parts of at most this size.
 *
 * @example
 * ```ts
 * import { KV_VALUE_BYTES } from "@celeriac/celeriac/transports";
 * console.assert(KV_VALUE_BYTES < 64 * 1024);
 * ```
 */
export const KV_VALUE_BYTES = 60 * 1024;
/** Parts written per atomic commit (Deno KV caps the total size of one commit). */
const PARTS_PER_COMMIT = 4;

/** Waits re-check at least this often; only a fallback against lost notifications. */
const SAFETY_RECHECK_MS = 1000;
/** Metas stored per atomic commit (Deno KV allows 100 checks per commit)... */
const STORE_CHUNK = 50;
/** ...and bytes per commit (Deno KV caps the total size of one commit). */
const STORE_CHUNK_BYTES = 256 * 1024;

interface Waiter {
  resolve(meta: ResultMeta): void;
  reject(reason: unknown): void;
  onState?(meta: ResultMeta): void;
}

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
  /** Seconds a result is kept (Celery `result_expires`); 0 keeps it forever. Default 86400. */
  resultExpires?: number;
  /** Key namespace (URL `prefix=<name>` gives `[name]` and overrides it). Default `["celeriac"]`. */
  prefix?: readonly string[];
}

interface StoredResult {
  /** The meta JSON, as given to {@link KvBackend.store}; `""` when it is stored in parts. */
  meta: string;
  /** A long meta's parts: `[...ns, "celery-task-meta-part", taskId, id, 0..count-1]`. */
  parts?: { id: string; count: number };
  status: string;
  /** Epoch milliseconds after which the result is gone; 0 = never. */
  expiresAt: number;
}

function live(value: StoredResult | null): value is StoredResult {
  return value !== null && (value.expiresAt === 0 || value.expiresAt > Date.now());
}

function metaBytes(meta: string): number {
  return /[\u0100-\uffff]/.test(meta) ? meta.length * 2 : meta.length;
}

/**
 * Whether a meta fits in one KV value. V8 may keep even ASCII text in its
 * two-byte form, which Deno KV stores at two bytes a character: count two.
 */
function fitsOneValue(meta: string): boolean {
  return meta.length * 2 <= KV_VALUE_BYTES;
}

/** Cut a meta's UTF-8 bytes into parts of at most {@link KV_VALUE_BYTES} each. */
function splitMeta(meta: string): Uint8Array[] {
  const bytes = new TextEncoder().encode(meta);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += KV_VALUE_BYTES) {
    parts.push(bytes.subarray(i, i + KV_VALUE_BYTES));
  }
  return parts;
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
  readonly #waiters = new Map<string, Set<Waiter>>();
  #watching: Promise<void> | null = null;
  #closed = false;
  readonly #chords: KvChords;

  /**
   * Use {@link openKvBackend}.
   *
   * @param shared the open database reference; the backend releases it on close
   * @param options resolved settings
   */
  constructor(shared: SharedKv, options: Required<KvBackendOptions>) {
    this.#shared = shared;
    this.#kv = shared.kv;
    this.#ns = [...options.prefix];
    this.#expiresMs = options.resultExpires * 1000;
    this.#chords = new KvChords(this.#kv, this.#ns, this.#expiresMs);
  }

  #key(taskId: string): Deno.KvKey {
    if (typeof taskId !== "string" || taskId === "") {
      throw new TypeError(`A task id must be a non-empty string, got ${String(taskId)}`);
    }
    return [...this.#ns, "celery-task-meta", taskId];
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
   *
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
      let chunk: StoreEntry[] = [];
      let bytes = 0;
      for (const e of entries) {
        const size = metaBytes(e.meta);
        if (!fitsOneValue(e.meta)) {
          await this.#storeParted(e);
          continue;
        }
        if (chunk.length === STORE_CHUNK || bytes + size > STORE_CHUNK_BYTES) {
          await this.#storeChunk(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(e);
        bytes += size;
      }
      if (chunk.length) await this.#storeChunk(chunk);
      this.#shared.notify();
    });
    for (const e of entries) {
      if (READY_STATES.has(e.status)) this.#settle(e.taskId, decodeResultMeta(e.meta));
    }
  }

  #stored(e: StoreEntry): StoredResult {
    return {
      meta: e.meta,
      status: e.status,
      expiresAt: this.#expiresMs > 0 ? Date.now() + this.#expiresMs : 0,
    };
  }

  /** Store up to {@link STORE_CHUNK} metas in one commit; fall back to one by one on a conflict. */
  async #storeChunk(entries: readonly StoreEntry[]): Promise<void> {
    const keys = entries.map((e) => this.#key(e.taskId));
    const current: Deno.KvEntryMaybe<StoredResult>[] = [];
    for (let i = 0; i < keys.length; i += 10) {
      current.push(...await this.#kv.getMany<StoredResult[]>(keys.slice(i, i + 10)));
    }
    const options = this.#expiresMs > 0 ? { expireIn: this.#expiresMs } : undefined;
    const op = this.#kv.atomic();
    entries.forEach((e, i) => {
      const now = current[i];
      if (live(now.value) && now.value.status === "SUCCESS") return;
      op.check(now).set(keys[i], this.#stored(e), options);
    });
    if ((await commitAtomic(op)).ok) {
      for (let i = 0; i < entries.length; i++) {
        const before = current[i].value;
        if (before?.parts && before.status !== "SUCCESS") {
          await this.#deleteParts(entries[i].taskId, before);
        }
      }
      return;
    }
    for (const e of entries) await this.#storeOne(e);
  }

  async #storeOne(e: StoreEntry): Promise<void> {
    const key = this.#key(e.taskId);
    const options = this.#expiresMs > 0 ? { expireIn: this.#expiresMs } : undefined;
    for (;;) {
      const current = await this.#kv.get<StoredResult>(key);
      if (live(current.value) && current.value.status === "SUCCESS") {
        log.debug("Task {taskId} already succeeded; {status} not stored", {
          taskId: e.taskId,
          status: e.status,
        });
        return;
      }
      const op = this.#kv.atomic().check(current).set(key, this.#stored(e), options);
      if ((await commitAtomic(op)).ok) {
        if (current.value) await this.#deleteParts(e.taskId, current.value);
        return;
      }
    }
  }

  #partKey(taskId: string, id: string, i: number): Deno.KvKey {
    return [...this.#ns, "celery-task-meta-part", taskId, id, i];
  }

  /**
   * Store a long meta: its parts first (under a fresh id, so a reader never
   * mixes two writes), then the head that names them; the parts of a head it
   * replaces are deleted afterwards.
   */
  async #storeParted(e: StoreEntry): Promise<void> {
    const parts = splitMeta(e.meta);
    const id = crypto.randomUUID().slice(0, 8);
    const options = this.#expiresMs > 0 ? { expireIn: this.#expiresMs } : undefined;
    for (let i = 0; i < parts.length; i += PARTS_PER_COMMIT) {
      const op = this.#kv.atomic();
      for (let j = i; j < Math.min(i + PARTS_PER_COMMIT, parts.length); j++) {
        op.set(this.#partKey(e.taskId, id, j), parts[j], options);
      }
      await commitAtomic(op);
    }
    const head: StoredResult = { ...this.#stored(e), meta: "", parts: { id, count: parts.length } };
    const key = this.#key(e.taskId);
    for (;;) {
      const current = await this.#kv.get<StoredResult>(key);
      if (live(current.value) && current.value.status === "SUCCESS") {
        await this.#deleteParts(e.taskId, head);
        return;
      }
      if ((await commitAtomic(this.#kv.atomic().check(current).set(key, head, options))).ok) {
        if (current.value) await this.#deleteParts(e.taskId, current.value);
        return;
      }
    }
  }

  async #deleteParts(taskId: string, value: StoredResult): Promise<void> {
    if (!value.parts) return;
    const { id, count } = value.parts;
    for (let i = 0; i < count; i += 100) {
      const op = this.#kv.atomic();
      for (let j = i; j < Math.min(i + 100, count); j++) op.delete(this.#partKey(taskId, id, j));
      await commitAtomic(op);
    }
  }

  /** The meta JSON of a stored value, joined from its parts; `null` if they are gone. */
  async #metaOf(taskId: string, value: StoredResult): Promise<string | null> {
    if (!value.parts) return value.meta;
    const { id, count } = value.parts;
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < count; i += 10) {
      const keys = [];
      for (let j = i; j < Math.min(i + 10, count); j++) keys.push(this.#partKey(taskId, id, j));
      for (const part of await this.#kv.getMany<Uint8Array[]>(keys)) {
        if (!(part.value instanceof Uint8Array)) return null;
        parts.push(part.value);
        length += part.value.length;
      }
    }
    const bytes = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(bytes);
  }

  /** The ready meta of a stored value, or `null`. */
  async #readyMeta(taskId: string, value: StoredResult | null): Promise<ResultMeta | null> {
    if (!live(value) || !READY_STATES.has(value.status as TaskState)) return null;
    const meta = await this.#metaOf(taskId, value);
    return meta === null ? null : decodeResultMeta(meta);
  }

  /** Read the current meta; `null` means PENDING (nothing stored, or expired). */
  async get(taskId: string): Promise<ResultMeta | null> {
    const key = this.#key(taskId);
    return await this.#run(async () => {
      const { value } = await this.#kv.get<StoredResult>(key);
      if (!live(value)) return null;
      const meta = await this.#metaOf(taskId, value);
      return meta === null ? null : decodeResultMeta(meta);
    });
  }

  /**
   * Wait until the task is SUCCESS, FAILURE or REVOKED. Rejects with
   * `signal.reason` on abort, or with an `AbortError` when the backend closes.
   *
   * Results stored by this backend settle their waiters at once; changes by
   * other processes are found by one re-check of every pending task per
   * change notification.
   */
  async waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta> {
    const key = this.#key(taskId);
    signal?.throwIfAborted();
    if (this.#closed) throw this.#closing.signal.reason;
    const { promise, resolve, reject } = Promise.withResolvers<ResultMeta>();
    const waiter: Waiter = { resolve, reject, onState };
    let set = this.#waiters.get(taskId);
    if (!set) this.#waiters.set(taskId, set = new Set());
    set.add(waiter);
    const onAbort = () => {
      this.#drop(taskId, waiter);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#watch();
    try {
      const { value } = await this.#kv.get<StoredResult>(key);
      const ready = await this.#readyMeta(taskId, value);
      if (ready) this.#settle(taskId, ready);
      else if (live(value)) {
        const meta = await this.#metaOf(taskId, value);
        if (meta !== null) this.#progress(taskId, meta);
      }
      return await promise;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#drop(taskId, waiter);
    }
  }

  #drop(taskId: string, waiter: Waiter): void {
    const set = this.#waiters.get(taskId);
    if (set?.delete(waiter) && set.size === 0) this.#waiters.delete(taskId);
  }

  /** Hand a state stored before the ready one to the waiters that follow states. */
  #progress(taskId: string, raw: string): void {
    const followers = [...this.#waiters.get(taskId) ?? []].filter((w) => w.onState);
    if (followers.length === 0) return;
    const meta = decodeResultMeta(raw);
    for (const w of followers) w.onState!(meta);
  }

  #settle(taskId: string, meta: ResultMeta): void {
    const set = this.#waiters.get(taskId);
    if (!set) return;
    this.#waiters.delete(taskId);
    for (const w of set) w.resolve(meta);
  }

  /** One loop per backend re-reads pending tasks after each change notification. */
  #watch(): void {
    if (this.#watching) return;
    const loop = async () => {
      while (this.#waiters.size > 0 && !this.#closed) {
        const seen = this.#shared.version;
        await this.#recheck();
        await this.#shared.changed(seen, SAFETY_RECHECK_MS, this.#closing.signal);
      }
    };
    this.#watching = loop()
      .catch((err) => log.warn("Result watch failed: {error}", { error: String(err) }))
      .finally(() => {
        this.#watching = null;
        if (this.#waiters.size > 0 && !this.#closed) this.#watch();
      });
  }

  async #recheck(): Promise<void> {
    const ids = [...this.#waiters.keys()];
    for (let i = 0; i < ids.length; i += 10) {
      const chunk = ids.slice(i, i + 10);
      const found = await this.#kv.getMany<StoredResult[]>(chunk.map((id) => this.#key(id)));
      for (let j = 0; j < found.length; j++) {
        const value = found[j].value;
        const ready = await this.#readyMeta(chunk[j], value);
        if (ready) this.#settle(chunk[j], ready);
        else if (live(value)) {
          const meta = await this.#metaOf(chunk[j], value);
          if (meta !== null) this.#progress(chunk[j], meta);
        }
      }
    }
  }

  /** Delete a stored result. */
  async forget(taskId: string): Promise<void> {
    const key = this.#key(taskId);
    await this.#run(async () => {
      const { value } = await this.#kv.get<StoredResult>(key);
      await commitAtomic(this.#kv.atomic().delete(key));
      if (value) await this.#deleteParts(taskId, value);
    });
  }

  /** Store a chord's size before its header is sent. */
  setChordSize(groupId: string, size: number): Promise<void> {
    return this.#run(() => this.#chords.setChordSize(groupId, size));
  }

  /** Record a chord header member; exactly one caller gets the members, in header order. */
  chordPartReturn(part: ChordPart): Promise<ChordMember[] | null> {
    return this.#run(() => this.#chords.partReturn(part));
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
    for (const set of this.#waiters.values()) for (const w of set) w.reject(closed);
    this.#waiters.clear();
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
 * @throws {RangeError} when `resultExpires` is negative or the prefix is empty
 * @throws {BrokerConnectionError} when the database cannot be opened
 */
export async function openKvBackend(
  url: string,
  options: KvBackendOptions = {},
): Promise<KvBackend> {
  const parsed = parseKvUrl(url);
  const resultExpires = options.resultExpires ?? 86400;
  if (!(resultExpires >= 0) || !Number.isFinite(resultExpires)) {
    throw new RangeError(
      `resultExpires must be a number of seconds >= 0 (0 keeps results forever), got ${resultExpires}`,
    );
  }
  const prefix = parsed.prefix !== undefined ? [parsed.prefix] : options.prefix ?? ["celeriac"];
  if (prefix.length === 0) {
    throw new RangeError('prefix must name at least one key part, e.g. ["celeriac"]');
  }
  const shared = await openSharedKv(parsed.path, url);
  return new KvBackend(shared, { resultExpires, prefix });
}
