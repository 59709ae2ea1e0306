/**
 * The ids a worker has been told to revoke, each remembered for a while
 * (Celery's `REVOKES_MAX_AGE` and `REVOKES_MAX`).
 *
 * @module
 */

/** How long a revoked id is remembered (Celery's `REVOKES_MAX_AGE`: 3 hours). */
export const REVOKE_TTL_MS = 10_800_000;
/** How many revoked ids a worker remembers (Celery's `REVOKES_MAX`). */
const REVOKES_MAX = 50_000;

/**
 * Revoked task ids with their expiry; the oldest are forgotten past 50,000.
 *
 * @example
 * ```ts
 * import { RevokedIds } from "@celeriac/celeriac/worker";
 * const revoked = new RevokedIds();
 * revoked.add(["a1"], Date.now() + 60_000);
 * revoked.has("a1"); // true
 * revoked.ids(); // ["a1"]
 * ```
 */
export class RevokedIds {
  readonly #until = new Map<string, number>();

  /**
   * Remember ids until `until`; an id added again moves to the newest. Of
   * more than 50,000 only the last 50,000 are looked at: the others would be
   * forgotten at once.
   *
   * @param ids task ids, oldest first
   * @param until epoch milliseconds
   */
  add(ids: Iterable<string>, until: number): void {
    const list = Array.isArray(ids) ? ids : [...ids];
    for (const id of list.slice(-REVOKES_MAX)) {
      this.#until.delete(id);
      this.#until.set(id, until);
    }
    // One iterator for all the oldest: keys().next() for each walks again over the deleted ones.
    const oldest = this.#until.keys();
    while (this.#until.size > REVOKES_MAX) this.#until.delete(oldest.next().value!);
  }

  /**
   * Whether an id is revoked now (an expired entry is forgotten).
   *
   * @param id task id
   * @returns true while revoked
   */
  has(id: string): boolean {
    // Asked for every task received: a first Map lookup of a string just decoded computes its
    // hash (~1 µs for a task id), which the usual case, nothing revoked, does not need.
    if (this.#until.size === 0) return false;
    const until = this.#until.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#until.delete(id);
    return false;
  }

  /**
   * The ids revoked now with their expiry (epoch milliseconds).
   *
   * @returns `[id, until]` pairs, oldest first
   */
  entries(): [string, number][] {
    return this.ids().map((id) => [id, this.#until.get(id)!]);
  }

  /**
   * The ids revoked now.
   *
   * @returns them, oldest first
   */
  ids(): string[] {
    return [...this.#until.keys()].filter((id) => this.has(id));
  }
}
