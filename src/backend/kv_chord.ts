/**
 * Chord joins and saved groups in Deno KV. Each header member is recorded
 * under its task id and a counter is raised in the same atomic commit
 * (checked against the counter's versionstamp), so exactly one member —
 * the one that takes the count to the chord size — gets the results, and a
 * redelivered member is not counted twice.
 *
 * Keys, under the backend's namespace: `["chord", gid, "size"]`,
 * `["chord", gid, "count"]`, `["chord", gid, "member", taskId]`, and
 * `["celery-taskset-meta", gid]` for saved groups.
 *
 * @module
 */

import { commitAtomic } from "../broker/kv_store.ts";
import { expiryOptions } from "./kv_meta_store.ts";
import { type ChordMember, decodeChordMember, encodeChordMember } from "../protocol/signature.ts";
import type { ChordPart } from "./port.ts";

interface StoredMember {
  index: number | null;
  text: string;
}

/** KV chord operations of one backend (its database, namespace and expiry). */
export class KvChords {
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #options: { expireIn: number } | undefined;

  /**
   * Chord operations on a backend's database.
   *
   * @param kv the database
   * @param ns the backend's key namespace
   * @param expiresMs expiry of chord keys in ms; 0 keeps them
   */
  constructor(kv: Deno.Kv, ns: readonly string[], expiresMs: number) {
    this.#kv = kv;
    this.#ns = ns;
    this.#options = expiryOptions(expiresMs);
  }

  #chordKey(groupId: string, ...rest: string[]): Deno.KvKey {
    return [...this.#ns, "chord", groupId, ...rest];
  }

  #groupKey(groupId: string): Deno.KvKey {
    return [...this.#ns, "celery-taskset-meta", groupId];
  }

  /** Store the chord size. */
  async setChordSize(groupId: string, size: number): Promise<void> {
    await commitAtomic(this.#kv.atomic().set(this.#chordKey(groupId, "size"), size, this.#options));
  }

  /** Record a member; the one that completes the chord gets all members in header order. */
  async partReturn(part: ChordPart): Promise<ChordMember[] | null> {
    const sizeKey = this.#chordKey(part.groupId, "size");
    const countKey = this.#chordKey(part.groupId, "count");
    const memberKey = this.#chordKey(part.groupId, "member", part.taskId);
    const stored: StoredMember = {
      index: part.groupIndex,
      text: encodeChordMember(part.taskId, part.state, part.resultJson),
    };
    for (;;) {
      const [size, count, member] = await this.#kv.getMany<[number, number, StoredMember]>([
        sizeKey,
        countKey,
        memberKey,
      ]);
      if (member.value !== null) return null;
      const n = (count.value ?? 0) + 1;
      const op = this.#kv.atomic().check(count).check(member)
        .set(memberKey, stored, this.#options)
        .set(countKey, n, this.#options);
      if (!(await commitAtomic(op)).ok) continue;
      if (size.value === null || n !== size.value) return null;
      const members: StoredMember[] = [];
      for await (
        const e of this.#kv.list<StoredMember>({ prefix: this.#chordKey(part.groupId, "member") })
      ) {
        members.push(e.value);
      }
      members.sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity));
      return members.map((m) => decodeChordMember(m.text));
    }
  }

  /** Delete a chord's bookkeeping. */
  async cleanup(groupId: string): Promise<void> {
    const keys: Deno.KvKey[] = [];
    for await (const e of this.#kv.list({ prefix: this.#chordKey(groupId) })) keys.push(e.key);
    for (let i = 0; i < keys.length; i += 100) {
      const op = this.#kv.atomic();
      for (const k of keys.slice(i, i + 100)) op.delete(k);
      await commitAtomic(op);
    }
  }

  /** Store a saved group meta. */
  async saveGroup(groupId: string, meta: string): Promise<void> {
    await commitAtomic(this.#kv.atomic().set(this.#groupKey(groupId), meta, this.#options));
  }

  /** Read a saved group meta. */
  async restoreGroup(groupId: string): Promise<string | null> {
    return (await this.#kv.get<string>(this.#groupKey(groupId))).value;
  }

  /** Delete a saved group meta. */
  async forgetGroup(groupId: string): Promise<void> {
    await commitAtomic(this.#kv.atomic().delete(this.#groupKey(groupId)));
  }
}
