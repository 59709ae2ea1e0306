/**
 * Chord joins and saved groups in Deno KV. Each header member is recorded
 * under its task id and a counter is raised in the same atomic commit
 * (checked against the counter's versionstamp), so exactly one member —
 * the one that takes the count to the chord size — gets the results, and a
 * redelivered member is not counted twice. Each entry records the count its
 * join committed: the completing member's redelivery (its worker killed
 * after the join, before the keys were deleted) finds its own count equal
 * to the size and gets the results again, and sends the body; another
 * member's redelivery does not. The keys are deleted after the body's send,
 * so a worker killed between the two (or a failed delete) sends the body
 * again on that redelivery. A member whose join entry would
 * be longer than one KV value (64 KiB) is recorded without its result,
 * which the completing member reads from that member's result meta (the
 * worker stores it before the member joins); a meta gone by then is a
 * ProtocolError, so the chord fails instead of waiting.
 *
 * Keys, under the backend's namespace: `["chord", gid, "size"]`,
 * `["chord", gid, "count"]`, `["chord", gid, "member", taskId]`, and
 * `["celery-taskset-meta", gid]` for saved groups. A size or counter that
 * is no count, a counter past the size, or a member entry that is no join
 * entry (another tool wrote them) is a ProtocolError naming the key: the
 * worker fails the chord's body with `ChordError('Join error: …')`. The
 * member that finds them deletes the spoiled key with the size and counter
 * in one commit, checked against the versionstamp it read; only the member
 * whose commit succeeds reports the error, so members that finish at once
 * fail the chord once. That commit also stores the body's FAILURE (the
 * chain steps after it are stored just before, in commits of their own): a
 * worker that dies right after it leaves the chord failed, not hanging.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { deleteKvKeys } from "../broker/kv_delete.ts";
import { commitAtomic } from "../broker/kv_store.ts";
import { expiryOptions, fitsOneValue, type KvMetaStore } from "./kv_meta_store.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { type ChordMember, decodeChordMember, encodeChordMember } from "../protocol/signature.ts";
import type { ChordFailure, ChordPart } from "./port.ts";

const log = getLogger(["celeriac", "backend", "kv"]);

interface StoredMember {
  index: number | null;
  /** The join entry; with `inMeta`, its result is `null`. */
  text: string;
  /** The result was too long for one KV value: it is read from the member's result meta. */
  inMeta?: true;
  /**
   * The count its join committed: the chord's size for the member that
   * completed it (absent in entries written before it was recorded).
   */
  n?: number;
}

/** A key as text, for messages: `["ns","chord","g1","size"]`. */
const keyText = (key: Deno.KvKey): string =>
  JSON.stringify(key, (_, v) => typeof v === "bigint" ? String(v) : v);

/** What an operator does about chord keys a Celeriac worker did not write. */
const REMEDY =
  "Something other than Celeriac wrote it (the worker deletes the chord's keys); send the chord again";

/**
 * A count stored in a chord key (its size or its counter), or a
 * ProtocolError naming the key (returned, for the join to report once): a
 * value that is no whole number would leave the chord waiting forever (its
 * body never run).
 */
function storedCount(key: Deno.KvKey, value: unknown, taskId: string): number | ProtocolError {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  const shown = typeof value === "bigint" ? `${value}n` : JSON.stringify(value) ?? String(value);
  return new ProtocolError(
    `Chord key ${keyText(key)} holds ${shown.slice(0, 100)}, not a count: the chord's body ` +
      `will not run. ${REMEDY}`,
    { taskId },
  );
}

/** A recorded member, or a ProtocolError naming its key. */
function storedMember(
  key: Deno.KvKey,
  value: unknown,
  taskId: string,
): ChordMember | ProtocolError {
  const text = (value as Partial<StoredMember> | null)?.text;
  try {
    if (typeof text !== "string") throw new ProtocolError("no {index, text} record");
    return decodeChordMember(text);
  } catch (err) {
    return new ProtocolError(
      `Chord key ${keyText(key)} is no join entry (${(err as Error).message}): the chord's body ` +
        `will not run. ${REMEDY}`,
      { taskId, cause: err },
    );
  }
}

/** KV chord operations of one backend (its database, namespace and expiry). */
export class KvChords {
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #options: { expireIn: number } | undefined;
  readonly #metas: KvMetaStore;

  /**
   * Chord operations on a backend's database.
   *
   * @param kv the database
   * @param ns the backend's key namespace
   * @param expiresMs expiry of chord keys in ms; 0 keeps them
   * @param metas the backend's metas, where a spoiled chord's failure is stored
   */
  constructor(kv: Deno.Kv, ns: readonly string[], expiresMs: number, metas: KvMetaStore) {
    this.#kv = kv;
    this.#ns = ns;
    this.#options = expiryOptions(expiresMs);
    this.#metas = metas;
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

  /**
   * Record a member; the one that completes the chord gets all members in
   * header order. A spoiled chord fails, with what `failure` gives stored
   * by the claim (see {@link KvChords.#spoiled}).
   */
  async partReturn(part: ChordPart, failure?: ChordFailure): Promise<ChordMember[] | null> {
    const sizeKey = this.#chordKey(part.groupId, "size");
    const countKey = this.#chordKey(part.groupId, "count");
    const memberKey = this.#chordKey(part.groupId, "member", part.taskId);
    const text = encodeChordMember(part.taskId, part.state, part.resultJson);
    // Deno KV takes at most 64 KiB a value: a longer result is read from the member's meta
    // (stored before it joins, in parts when long) by the member that completes the join.
    const entry: StoredMember = fitsOneValue(text) ? { index: part.groupIndex, text } : {
      index: part.groupIndex,
      text: encodeChordMember(part.taskId, part.state, "null"),
      inMeta: true,
    };
    for (;;) {
      const [size, count, member] = await this.#kv.getMany<[number, number, StoredMember]>([
        sizeKey,
        countKey,
        memberKey,
      ]);
      if (member.value !== null) return await this.#joinedAgain(part, failure, size, count, member);
      const counted = count.value === null ? 0 : storedCount(countKey, count.value, part.taskId);
      if (counted instanceof ProtocolError) {
        return await this.#spoiled(part, failure, count, counted);
      }
      const total = size.value === null ? null : storedCount(sizeKey, size.value, part.taskId);
      if (total instanceof ProtocolError) return await this.#spoiled(part, failure, size, total);
      const n = counted + 1;
      const op = this.#kv.atomic().check(count).check(member)
        .set(memberKey, { ...entry, n }, this.#options)
        .set(countKey, n, this.#options);
      if (!(await commitAtomic(op)).ok) continue;
      if (total !== null && n > total) {
        // Members are counted once each: a counter past the size was not written by a member.
        return await this.#spoiled(
          part,
          failure,
          size,
          new ProtocolError(
            `Chord key ${keyText(countKey)} counts ${n} members of a chord of ${total}: the ` +
              `chord's body will not run. ${REMEDY}`,
            { taskId: part.taskId },
          ),
        );
      }
      if (total === null || n !== total) return null;
      return await this.#members(part, failure, size);
    }
  }

  /**
   * A member joining again whose entry is recorded (its redelivery, the
   * worker killed after its join): it gets the members again only when
   * its own join completed the chord (its entry holds the count that
   * reached the size) and the chord's keys are still there, so they were
   * not deleted yet. The body may have been sent already: it is sent
   * before the keys are deleted, so a worker killed between the two (or a
   * failed delete) sends it again. Only one member's join reached the
   * size, so no other member's redelivery sends the body too.
   */
  async #joinedAgain(
    part: ChordPart,
    failure: ChordFailure | undefined,
    size: Deno.KvEntryMaybe<number>,
    count: Deno.KvEntryMaybe<number>,
    member: Deno.KvEntry<StoredMember>,
  ): Promise<ChordMember[] | null> {
    const n = (member.value as Partial<StoredMember>).n;
    if (typeof n !== "number" || size.value !== n || count.value !== n) return null;
    log.debug(
      "Task {id} of chord {group}: joined again; its join completed the chord and the chord's " +
        "keys are still there: it sends the body (again, if it went before they were deleted)",
      { id: part.taskId, group: part.groupId },
    );
    return await this.#members(part, failure, size);
  }

  /** A complete chord's members in header order; a spoiled entry fails the chord. */
  async #members(
    part: ChordPart,
    failure: ChordFailure | undefined,
    size: Deno.KvEntryMaybe<unknown>,
  ): Promise<ChordMember[] | null> {
    const members: { index: number; member: ChordMember }[] = [];
    for await (const e of this.#kv.list({ prefix: this.#chordKey(part.groupId, "member") })) {
      const index = (e.value as Partial<StoredMember> | null)?.index;
      let m = storedMember(e.key, e.value, part.taskId);
      if ((e.value as Partial<StoredMember>).inMeta && !(m instanceof ProtocolError)) {
        m = await this.#resultFromMeta(m, part.taskId);
      }
      if (m instanceof ProtocolError) return await this.#spoiled(part, failure, size, m);
      members.push({ index: typeof index === "number" ? index : Infinity, member: m });
    }
    members.sort((a, b) => a.index - b.index);
    return members.map((m) => m.member);
  }

  /**
   * A member whose result was too long for its join entry, with the result
   * of its meta; a ProtocolError when that meta is gone (expired,
   * forgotten, or never stored: a task that ignores its result).
   */
  async #resultFromMeta(m: ChordMember, taskId: string): Promise<ChordMember | ProtocolError> {
    const read = await this.#kv.get(this.#metas.key(m.taskId));
    let meta;
    try {
      meta = await this.#metas.readyMeta(m.taskId, read);
    } catch (err) {
      if (err instanceof ProtocolError) return err;
      throw err;
    }
    if (meta) return { ...m, result: meta.result };
    return new ProtocolError(
      `Chord member ${m.taskId}'s result is too long for its join entry (Deno KV takes 64 KiB a ` +
        "value) and its result meta, where the join reads it, is gone: the chord's body will not " +
        "run. Keep such a member's result (no ignoreResult) until its chord completes",
      { taskId },
    );
  }

  /**
   * A join that found its chord spoiled (`err`): delete `entry` (the key it
   * read spoiled, or the size) with the size and counter in one commit
   * checked against `entry` as read, which also stores the body's FAILURE,
   * the first meta `failure` makes from `err` (so no crash leaves the keys
   * gone and the chord unfailed); throw `err` only when that commit
   * succeeds. The other metas (the chain steps after the body, any number)
   * are stored before it in commits of their own, by each member that read
   * the chord spoiled, the same FAILUREs: one commit holds at most 100
   * checks, one per meta. Members that read the spoiled chord at once all
   * come here and one commit wins: the others resolve `null` and the chord
   * fails once. With the size gone no later member completes the join.
   */
  async #spoiled(
    part: ChordPart,
    failure: ChordFailure | undefined,
    entry: Deno.KvEntryMaybe<unknown>,
    err: ProtocolError,
  ): Promise<null> {
    const [body, ...steps] = failure?.(err) ?? [];
    await this.#metas.storeAll(steps);
    for (;;) {
      const op = this.#kv.atomic().check(entry).delete(entry.key)
        .delete(this.#chordKey(part.groupId, "size"))
        .delete(this.#chordKey(part.groupId, "count"));
      const stores = await this.#metas.addStores(op, body ? [body] : []);
      let ok = false;
      try {
        ok = (await commitAtomic(op)).ok;
      } finally {
        // The parts written for a long FAILURE, which no head names after a failed commit.
        if (!ok) await stores.lost();
      }
      if (ok) {
        await stores.committed();
        throw err;
      }
      // Lost to a change of a meta, not of the spoiled key: claim again.
      if ((await this.#kv.get(entry.key)).versionstamp !== entry.versionstamp) break;
    }
    log.debug(
      "Task {id} of chord {group}: not joined; another member found {key} spoiled and failed " +
        "the chord",
      { id: part.taskId, group: part.groupId, key: keyText(entry.key) },
    );
    return null;
  }

  /** Delete a chord's bookkeeping. */
  async cleanup(groupId: string): Promise<void> {
    const keys: Deno.KvKey[] = [];
    for await (const e of this.#kv.list({ prefix: this.#chordKey(groupId) })) keys.push(e.key);
    await deleteKvKeys(this.#kv, keys);
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
