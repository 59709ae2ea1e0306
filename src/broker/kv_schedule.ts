/**
 * The schedule store on Deno KV: the lease is a record with its holder,
 * token and expiry time, the fencing token a counter, run states and
 * run-time entries one key each. Every change that must hold under the
 * lease is an atomic operation checking the versionstamps it read.
 *
 * @module
 */

import { commitAtomic, openSharedKv, parseKvUrl, type SharedKv } from "./kv_store.ts";
import { MAX_TIMER_MS } from "./long_timeout.ts";
import {
  type BrokenLease,
  type CommitOutcome,
  DEFAULT_BEAT_NAMESPACE,
  type LeaseInfo,
  type ScheduleStore,
  type ScheduleStoreOptions,
} from "./schedule_store.ts";

interface LeaseRecord {
  holder: string;
  token: number;
  expiresAt: number;
}

/**
 * A stored lease record, or `null` when the value is not one a beat could
 * have written: not `{holder, token, expiresAt}`, or expiring further ahead
 * than the longest lease time (a timer's 24.8 days), so never in practice.
 */
function readLease(value: unknown, now: number): LeaseRecord | null {
  const v = value as Partial<LeaseRecord> | null;
  const ok = typeof v === "object" && v !== null && typeof v.holder === "string" &&
    Number.isSafeInteger(v.token) && typeof v.expiresAt === "number" &&
    v.expiresAt <= now + MAX_TIMER_MS;
  return ok ? v as LeaseRecord : null;
}

/**
 * A {@link ScheduleStore} on Deno KV (honours the URL's `prefix`). Lease
 * expiry is judged by the clocks of the processes sharing the database.
 *
 * @example
 * ```ts
 * import { openKvScheduleStore } from "@celeriac/celeriac/transports";
 * const store = await openKvScheduleStore("kv://:memory:");
 * const token = await store.acquire("beat-1", 10_000);
 * console.assert(token !== null && (await store.acquire("beat-2", 10_000)) === null);
 * await store.close();
 * ```
 */
export class KvScheduleStore implements ScheduleStore {
  readonly #shared: SharedKv;
  readonly #kv: Deno.Kv;
  readonly #ns: Deno.KvKey;

  /**
   * Use {@link openKvScheduleStore}.
   *
   * @param shared the open database; released on close
   * @param ns the key prefix of this schedule
   */
  constructor(shared: SharedKv, ns: Deno.KvKey) {
    this.#shared = shared;
    this.#kv = shared.kv;
    this.#ns = ns;
  }

  #k(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#ns, ...parts];
  }

  async acquire(
    holder: string,
    ttlMs: number,
    onBroken?: (found: BrokenLease) => void,
  ): Promise<number | null> {
    for (;;) {
      const [lease, fence] = await this.#kv.getMany<[unknown, unknown]>([
        this.#k("lease"),
        this.#k("fence"),
      ]);
      const now = Date.now();
      const held = readLease(lease.value, now);
      const live = held !== null && held.expiresAt > now;
      if (live && held.holder !== holder) return null;
      // Greater than the fence and than the token of the lease replaced, even one unusable.
      const seen = [fence.value, (lease.value as Partial<LeaseRecord> | null)?.token];
      const last = Math.max(0, ...seen.filter((n): n is number => Number.isSafeInteger(n)));
      const token = live ? held.token : last + 1;
      const op = this.#kv.atomic().check(lease, fence)
        .set(this.#k("lease"), { holder, token, expiresAt: now + ttlMs })
        .set(this.#k("fence"), token);
      if ((await commitAtomic(op)).ok) {
        if (lease.value !== null && held === null) {
          onBroken?.({
            key: this.#k("lease").join("/"),
            value: JSON.stringify(lease.value) ?? String(lease.value),
            why: `it is not {holder, token, expiresAt} expiring within ${MAX_TIMER_MS} ms`,
          });
        }
        this.#shared.notify();
        return token;
      }
    }
  }

  async release(holder: string, token: number): Promise<void> {
    const lease = await this.#kv.get<unknown>(this.#k("lease"));
    const held = readLease(lease.value, Date.now());
    if (held?.holder !== holder || held.token !== token) return;
    await commitAtomic(this.#kv.atomic().check(lease).delete(this.#k("lease")));
  }

  async lease(): Promise<LeaseInfo | null> {
    const now = Date.now();
    const value = readLease((await this.#kv.get<unknown>(this.#k("lease"))).value, now);
    const ttlMs = value ? value.expiresAt - now : 0;
    return value && ttlMs > 0 ? { holder: value.holder, token: value.token, ttlMs } : null;
  }

  /** Every value under `part`, by the last element of its key. */
  async #readAll(part: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for await (const e of this.#kv.list<string>({ prefix: this.#k(part) })) {
      out.set(String(e.key[e.key.length - 1]), e.value);
    }
    return out;
  }

  readRuns(): Promise<Map<string, string>> {
    return this.#readAll("runs");
  }

  async commitRun(
    holder: string,
    token: number,
    entry: string,
    expected: string | null,
    next: string,
  ): Promise<CommitOutcome> {
    for (;;) {
      const [lease, run] = await this.#kv.getMany<[unknown, string]>([
        this.#k("lease"),
        this.#k("runs", entry),
      ]);
      const l = readLease(lease.value, Date.now());
      if (!l || l.holder !== holder || l.token !== token || l.expiresAt <= Date.now()) {
        return "lost";
      }
      if (run.value !== expected) return "conflict";
      const op = this.#kv.atomic().check(lease, run).set(this.#k("runs", entry), next);
      if ((await commitAtomic(op)).ok) return "ok";
    }
  }

  async deleteRun(entry: string): Promise<void> {
    await this.#kv.delete(this.#k("runs", entry));
  }

  readEntries(): Promise<Map<string, string>> {
    return this.#readAll("entries");
  }

  async putEntry(name: string, value: string): Promise<void> {
    await this.#kv.set(this.#k("entries", name), value);
    this.#shared.notify();
  }

  async deleteEntry(name: string): Promise<boolean> {
    const e = await this.#kv.get(this.#k("entries", name));
    if (e.versionstamp === null) return false;
    await this.#kv.delete(this.#k("entries", name));
    this.#shared.notify();
    return true;
  }

  async close(): Promise<void> {
    await this.#shared.release();
  }
}

/**
 * Open a schedule store on a Deno KV database (`kv://file.sqlite`,
 * `kv:///abs/path.sqlite`, `kv://:memory:`; `?prefix=` as for the broker).
 *
 * @example
 * ```ts
 * import { openKvScheduleStore } from "@celeriac/celeriac/transports";
 * const store = await openKvScheduleStore("kv://:memory:", { namespace: "billing." });
 * await store.putEntry("tick", '{"task":"tasks.tick","schedule":10}');
 * console.assert((await store.readEntries()).has("tick"));
 * await store.close();
 * ```
 *
 * @param url the `kv://` URL
 * @param options key namespace, signal
 * @returns the store
 * @throws {BrokerConnectionError} when the database cannot be opened
 */
export async function openKvScheduleStore(
  url: string,
  options: ScheduleStoreOptions = {},
): Promise<KvScheduleStore> {
  options.signal?.throwIfAborted();
  const parsed = parseKvUrl(url);
  const shared = await openSharedKv(parsed.path, url, options.signal);
  return new KvScheduleStore(shared, [
    parsed.prefix ?? "celeriac",
    options.namespace ?? DEFAULT_BEAT_NAMESPACE,
  ]);
}
