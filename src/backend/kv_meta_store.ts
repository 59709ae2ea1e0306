/**
 * How the Deno KV result backend stores task metas: each value holds the
 * meta JSON text exactly as Celery stores it, with its status and expiry
 * time beside it; a meta longer than {@link KV_VALUE_BYTES} is stored in
 * parts under a fresh id and joined on reading. A stored SUCCESS is never
 * replaced.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { deleteKvKeys } from "../broker/kv_delete.ts";
import { commitAtomic } from "../broker/kv_store.ts";
import { keyText } from "../broker/kv_entry_check.ts";
import { KV_MAX_RESULT_BYTES, KV_VALUE_BYTES, resultProblem } from "./kv_result_check.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  decodeResultMeta,
  READY_STATES,
  type ResultMeta,
  type TaskState,
} from "../protocol/result_meta.ts";
import { joinBytes } from "../protocol/bytes.ts";
import type { StoreEntry } from "./port.ts";

const log = getLogger(["celeriac", "backend", "kv"]);

export { KV_MAX_RESULT_BYTES, KV_VALUE_BYTES };
/** Parts written per atomic commit (Deno KV caps the total size of one commit). */
const PARTS_PER_COMMIT = 4;

/** Metas stored per atomic commit (Deno KV allows 100 checks per commit)... */
const STORE_CHUNK = 50;
/** ...and bytes per commit (Deno KV caps the total size of one commit). */
const STORE_CHUNK_BYTES = 256 * 1024;

/**
 * A task meta as stored under `[...ns, "celery-task-meta", taskId]`.
 *
 * @example
 * ```ts
 * const text = JSON.stringify({ status: "SUCCESS", result: 5 });
 * const value: StoredResult = { meta: text, status: "SUCCESS", expiresAt: 0 };
 * ```
 */
export interface StoredResult {
  /** The meta JSON, as given to `KvBackend.store()`; `""` when it is stored in parts. */
  meta: string;
  /** A long meta's parts: `[...ns, "celery-task-meta-part", taskId, id, 0..count-1]`. */
  parts?: { id: string; count: number };
  status: string;
  /** Epoch milliseconds after which the result is gone; 0 = never. */
  expiresAt: number;
}

/**
 * Whether a stored value is there and has not expired (Deno KV deletes
 * expired keys only about once a minute).
 *
 * @example
 * ```ts
 * import { live } from "./kv_meta_store.ts";
 * live({ meta: "{}", status: "SUCCESS", expiresAt: Date.now() - 1 }); // false
 * ```
 */
export function live(value: StoredResult | null): value is StoredResult {
  return value !== null && (value.expiresAt === 0 || value.expiresAt > Date.now());
}

/**
 * The bytes a meta counts for against {@link KV_MAX_RESULT_BYTES}.
 *
 * @example
 * ```ts
 * import { metaBytes } from "./kv_meta_store.ts";
 * metaBytes("abc"); // 3
 * ```
 */
export function metaBytes(meta: string): number {
  return /[\u0100-\uffff]/.test(meta) ? meta.length * 2 : meta.length;
}

/**
 * Whether a text (a meta, a chord join entry) fits in one KV value. V8 may
 * keep even ASCII text in its two-byte form, which Deno KV stores at two
 * bytes a character: count two.
 *
 * @example
 * ```ts
 * import { fitsOneValue } from "./kv_meta_store.ts";
 * fitsOneValue("x".repeat(40_000)); // false: 80,000 bytes in the worst case
 * ```
 *
 * @param meta the text
 * @returns whether it fits
 */
export function fitsOneValue(meta: string): boolean {
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
 * The options of a KV write that expires after `expiresMs`; none when it is 0
 * (the value is kept).
 *
 * @example
 * ```ts
 * import { expiryOptions } from "./kv_meta_store.ts";
 * expiryOptions(60_000); // { expireIn: 60000 }
 * expiryOptions(0); // undefined
 * ```
 *
 * @param expiresMs how long the value is kept in ms; 0 keeps it forever
 * @returns the options for `set`
 */
export function expiryOptions(expiresMs: number): { expireIn: number } | undefined {
  return expiresMs > 0 ? { expireIn: expiresMs } : undefined;
}

/**
 * The task metas of one backend: its database, namespace and expiry.
 *
 * @example
 * ```ts ignore
 * import { KvMetaStore } from "./kv_meta_store.ts";
 * const metas = new KvMetaStore(kv, ["celeriac"], 86_400_000);
 * await metas.storeAll([{ taskId, status: "SUCCESS", meta }]);
 * const { value } = await kv.get<StoredResult>(metas.key(taskId));
 * ```
 */
export class KvMetaStore {
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #expiresMs: number;

  /**
   * @param kv the database
   * @param ns the key namespace
   * @param expiresMs how long a meta is kept; 0 keeps it forever
   */
  constructor(kv: Deno.Kv, ns: readonly string[], expiresMs: number) {
    this.#kv = kv;
    this.#ns = ns;
    this.#expiresMs = expiresMs;
  }

  /** The key of a task's meta; a TypeError for an id that is not a non-empty string. */
  key(taskId: string): Deno.KvKey {
    if (typeof taskId !== "string" || taskId === "") {
      throw new TypeError(`A task id must be a non-empty string, got ${String(taskId)}`);
    }
    return [...this.#ns, "celery-task-meta", taskId];
  }

  /**
   * Store metas: up to {@link STORE_CHUNK} short ones per commit, long ones
   * in parts. Sizes are the caller's to check.
   */
  async storeAll(entries: readonly StoreEntry[]): Promise<void> {
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
    const keys = entries.map((e) => this.key(e.taskId));
    const current: Deno.KvEntryMaybe<StoredResult>[] = [];
    for (let i = 0; i < keys.length; i += 10) {
      current.push(...await this.#kv.getMany<StoredResult[]>(keys.slice(i, i + 10)));
    }
    const options = expiryOptions(this.#expiresMs);
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
          await this.deleteParts(entries[i].taskId, before);
        }
      }
      return;
    }
    for (const e of entries) await this.#storeOne(e);
  }

  async #storeOne(e: StoreEntry): Promise<void> {
    const key = this.key(e.taskId);
    const options = expiryOptions(this.#expiresMs);
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
        if (current.value) await this.deleteParts(e.taskId, current.value);
        return;
      }
    }
  }

  /**
   * Add the stores of `entries` to `op`, another commit (a chord's claim of
   * its failure, kv_chord.ts), each checked against its meta as read now; a
   * stored SUCCESS is left out, as {@link storeAll} leaves it. A meta too
   * long for one value has its parts written now, under a fresh id, and only
   * its head added to `op`. Resolves with what to run once `op` committed
   * (delete the parts of the long metas it replaced) or failed (delete the
   * parts written for it, which no head names).
   */
  async addStores(
    op: Deno.AtomicOperation,
    entries: readonly StoreEntry[],
  ): Promise<{ committed: () => Promise<void>; lost: () => Promise<void> }> {
    const keys = entries.map((e) => this.key(e.taskId));
    const current: Deno.KvEntryMaybe<StoredResult>[] = [];
    for (let i = 0; i < keys.length; i += 10) {
      current.push(...await this.#kv.getMany<StoredResult[]>(keys.slice(i, i + 10)));
    }
    const options = expiryOptions(this.#expiresMs);
    const replaced: [string, StoredResult][] = [];
    const written: [string, StoredResult][] = [];
    for (const [i, e] of entries.entries()) {
      const now = current[i];
      if (live(now.value) && now.value.status === "SUCCESS") continue;
      let value = this.#stored(e);
      if (!fitsOneValue(e.meta)) {
        value = await this.#writeParts(e);
        written.push([e.taskId, value]);
      }
      op.check(now).set(keys[i], value, options);
      if (now.value?.parts) replaced.push([e.taskId, now.value]);
    }
    const deleteAll = (values: [string, StoredResult][]) => async () => {
      for (const [taskId, value] of values) await this.deleteParts(taskId, value);
    };
    return { committed: deleteAll(replaced), lost: deleteAll(written) };
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
    const head = await this.#writeParts(e);
    const options = expiryOptions(this.#expiresMs);
    const key = this.key(e.taskId);
    for (;;) {
      const current = await this.#kv.get<StoredResult>(key);
      if (live(current.value) && current.value.status === "SUCCESS") {
        await this.deleteParts(e.taskId, head);
        return;
      }
      if ((await commitAtomic(this.#kv.atomic().check(current).set(key, head, options))).ok) {
        if (current.value) await this.deleteParts(e.taskId, current.value);
        return;
      }
    }
  }

  /** Write a long meta's parts under a fresh id; resolves with the head that names them. */
  async #writeParts(e: StoreEntry): Promise<StoredResult> {
    const parts = splitMeta(e.meta);
    const id = crypto.randomUUID().slice(0, 8);
    const options = expiryOptions(this.#expiresMs);
    for (let i = 0; i < parts.length; i += PARTS_PER_COMMIT) {
      const op = this.#kv.atomic();
      for (let j = i; j < Math.min(i + PARTS_PER_COMMIT, parts.length); j++) {
        op.set(this.#partKey(e.taskId, id, j), parts[j], options);
      }
      await commitAtomic(op);
    }
    return { ...this.#stored(e), meta: "", parts: { id, count: parts.length } };
  }

  /** Delete the parts of a long meta (nothing for a short one, or a malformed value). */
  async deleteParts(taskId: string, value: StoredResult): Promise<void> {
    if (!value.parts || resultProblem(value) !== null) return;
    const { id, count } = value.parts;
    await deleteKvKeys(
      this.#kv,
      Array.from({ length: count }, (_, j) => this.#partKey(taskId, id, j)),
    );
  }

  /** The meta JSON of a stored value, joined from its parts; `null` if they are gone. */
  async metaOf(taskId: string, value: StoredResult): Promise<string | null> {
    if (!value.parts) return value.meta;
    const { id, count } = value.parts;
    const parts: Uint8Array[] = [];
    for (let i = 0; i < count; i += 10) {
      const keys = [];
      for (let j = i; j < Math.min(i + 10, count); j++) keys.push(this.#partKey(taskId, id, j));
      for (const part of await this.#kv.getMany<Uint8Array[]>(keys)) {
        if (!(part.value instanceof Uint8Array)) return null;
        parts.push(part.value);
      }
    }
    return new TextDecoder().decode(joinBytes(parts));
  }

  /**
   * A stored value as read, when it is there and has not expired; `null`
   * when not.
   *
   * @throws {ProtocolError} naming the key, when the value is not a stored result
   */
  checked(
    taskId: string,
    entry: { value: unknown; versionstamp: string | null },
  ): StoredResult | null {
    if (entry.versionstamp === null) return null;
    const { value } = entry;
    const problem = resultProblem(value);
    if (problem !== null) {
      throw new ProtocolError(
        `The result of task ${taskId} cannot be read: KV key ${keyText(this.key(taskId))} holds ` +
          `a value of unknown shape (${problem}). Something other than Celery or Celeriac wrote ` +
          `it; delete the key (forget() the result)`,
        { taskId },
      );
    }
    const stored = value as StoredResult | null;
    return live(stored) ? stored : null;
  }

  /**
   * The ready meta of a stored value, or `null`.
   *
   * @throws {ProtocolError} when the value is not a stored result ({@link checked})
   */
  async readyMeta(
    taskId: string,
    read: { value: unknown; versionstamp: string | null },
  ): Promise<ResultMeta | null> {
    const value = this.checked(taskId, read);
    if (value === null || !READY_STATES.has(value.status as TaskState)) return null;
    const meta = await this.metaOf(taskId, value);
    return meta === null ? null : decodeResultMeta(meta);
  }
}
