/**
 * Chord joins and saved groups on Redis, with the keys and commands of
 * Celery 5.2's Redis result backend, so Python and Celeriac workers can
 * complete the same chord:
 *
 * - `celery-taskset-meta-<gid>.s`: the chord size (SETEX + PUBLISH by the producer);
 * - `celery-taskset-meta-<gid>.j`: sorted set of `[1, id, state, result]`, score = `group_index`;
 * - `celery-taskset-meta-<gid>.t`: a size delta (`add_to_chord`), usually absent;
 * - `celery-taskset-meta-<gid>.c`: the id of the claim that failed a spoiled chord (Celeriac's);
 * - `celery-taskset-meta-<gid>.b`: the id of the member that sends the body (Celeriac's);
 * - `celery-taskset-meta-<gid>`: a saved group (`GroupResult.save()`).
 *
 * Each member's ZADD and ZCOUNT run in one MULTI, so exactly one member sees
 * the count reach the size and publishes the body. A member joining again
 * (redelivered: its worker killed after the join) counts the same entry and
 * sees the count at the size too while the keys are still there: the
 * member that gets the body marks `.b` with its id first, in the script
 * that checks `.j` still holds the count and reads its members
 * ({@link SEND_SCRIPT}), so only it sends the body, again when it joins
 * again, and no other member's redelivery does. The keys are deleted after
 * the body's send, so a worker killed between the two (or a failed delete)
 * sends the body again on its redelivery. A member that finds a key
 * spoiled (another tool wrote it) claims the failure with one script: it
 * deletes the chord's keys only while that key is still spoiled as the
 * member read it, storing the body's FAILURE in the same script (a worker
 * that dies right after the claim leaves the chord failed, not hanging),
 * and only the member whose script deleted them reports the error: members
 * that finish at once fail the chord once, even when a later member's ZADD
 * has re-created `.j` in between. A claim whose reply was lost (through
 * Sentinel or Cluster the join is sent again during a failover) is sent
 * again alone, under its id: the script that ran finds its id in `.c` and
 * the member still fails the chord once (its errbacks, an outer chord).
 *
 * On a Redis Cluster the group id is a hash tag (`celery-taskset-meta-{<gid>}.j`)
 * so a chord's keys share a slot; Python Celery has no cluster result
 * backend, so nothing there expects the untagged names.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { RedisClient } from "../broker/redis_client.ts";
import { isConnectionFailure, isWrongType } from "../broker/redis_failures.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import { type ChordMember, decodeChordMember, encodeChordMember } from "../protocol/signature.ts";
import type { ChordFailure, ChordPart, StoreEntry } from "./port.ts";
import { CLAIM_MARK_SECONDS, CLAIM_SCRIPT, SEND_SCRIPT } from "./redis_chord_lua.ts";

const log = getLogger(["celeriac", "backend", "redis"]);

/**
 * A count stored in a chord key (`.s` its size, `.t` a size delta), or a
 * ProtocolError naming the key (returned, for the join to report once): a
 * value that is no integer would leave the chord waiting forever.
 */
function storedCount(key: string, raw: string): number | ProtocolError {
  const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (Number.isSafeInteger(n)) return n;
  return new ProtocolError(
    `Chord key ${key} holds ${JSON.stringify(raw.slice(0, 100))}, not a count: the chord's ` +
      `body will not run. Something other than a Celery or Celeriac producer wrote it (the ` +
      `worker deletes the chord's keys, ${key.slice(0, -2)}.*); send the chord again`,
  );
}

/**
 * Key prefix of saved groups and chord bookkeeping, as in Celery.
 *
 * @example
 * ```ts
 * import { GROUP_META_PREFIX } from "@celeriac/celeriac/transports";
 * GROUP_META_PREFIX + "g1" + ".s"; // the chord size key of group g1
 * ```
 */
export const GROUP_META_PREFIX = "celery-taskset-meta-";

/** The key each command of a join's MULTI reads (ZADD, ZCOUNT, GET `.t`, GET `.s`, EXPIREs). */
const JOIN_KEYS: ChordKey[] = [".j", ".j", ".t", ".s", ".j", ".t", ".s"];

/** A chord key's suffix: the join's sorted set, the size delta, the size. */
type ChordKey = ".j" | ".t" | ".s";

/** {@link CLAIM_SCRIPT}'s first KEYS, in order: the chord's keys (then `.c`, `.b`, the metas'). */
const CLAIM_KEYS: ChordKey[] = [".j", ".t", ".s"];

/**
 * How a join found a chord key spoiled, for {@link CLAIM_SCRIPT} to check it
 * still is: `read` is the type the key should hold (`type`), the string read
 * (`value`) or the sorted set's entry read (`member`).
 */
interface Spoil {
  how: "type" | "value" | "member";
  read: string;
}

interface Scripted {
  celeriacChordClaim(numKeys: number, ...args: string[]): Promise<number>;
  celeriacChordSend(numKeys: number, ...args: string[]): Promise<string[] | 0 | null>;
}

/** Where a chord's failure is stored: the backend's meta keys and its store. */
export interface ChordMetas {
  /** The key of a task's meta. */
  key(taskId: string): string;
  /** Store metas as the backend does. */
  store(entries: readonly StoreEntry[]): Promise<void>;
}

/** Redis chord operations of one backend (its client, key prefix and TTL). */
export class RedisChords {
  readonly #client: RedisClient & Scripted;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #cluster: boolean;
  readonly #metas: ChordMetas;
  /**
   * The claims sent whose reply did not come (by group id and member's task
   * id): the join sent again for that member sends its claim again instead.
   */
  readonly #unanswered = new Map<string, () => Promise<null>>();

  /**
   * Chord operations on a backend's connection.
   *
   * @param client the backend's command connection
   * @param prefix `global_keyprefix`, or ""
   * @param ttl result expiry in seconds; 0 keeps keys forever
   * @param cluster a Redis Cluster: hash-tag the group id so a chord's keys share a slot
   * @param metas the backend's meta keys and store, for a spoiled chord's failure
   */
  constructor(
    client: RedisClient,
    prefix: string,
    ttl: number,
    cluster: boolean,
    metas: ChordMetas,
  ) {
    client.defineCommand("celeriacChordClaim", { lua: CLAIM_SCRIPT });
    client.defineCommand("celeriacChordSend", { lua: SEND_SCRIPT });
    this.#client = client as RedisClient & Scripted;
    this.#prefix = prefix;
    this.#ttl = ttl;
    this.#cluster = cluster;
    this.#metas = metas;
  }

  /** The key of a saved group (and the stem of the chord keys). */
  key(groupId: string): string {
    return this.#prefix + GROUP_META_PREFIX + (this.#cluster ? `{${groupId}}` : groupId);
  }

  async #setAndPublish(key: string, value: string): Promise<void> {
    const m = this.#client.multi();
    if (this.#ttl > 0) m.setex(key, this.#ttl, value);
    else m.set(key, value);
    m.publish(key, value);
    await m.exec();
  }

  /** SETEX + PUBLISH `<key>.s`, as Celery's `set_chord_size`. */
  setChordSize(groupId: string, size: number): Promise<void> {
    return this.#setAndPublish(this.key(groupId) + ".s", String(size));
  }

  /**
   * The entry recorded in `.j` under the member's task id (looked up at its
   * score, its group index), for a join made again; null when there is none
   * or `.j` is no sorted set (the join's ZADD reports that).
   */
  async #recorded(joinKey: string, part: ChordPart): Promise<string | null> {
    const score = part.groupIndex ?? "+inf";
    let entries: string[];
    try {
      entries = await this.#client.zrangebyscore(joinKey, score, score);
    } catch (err) {
      if (isWrongType(err)) return null;
      throw err;
    }
    const prefix = `[1, ${pyJsonDumps(part.taskId)}, `;
    return entries.find((e) => e.startsWith(prefix)) ?? null;
  }

  /**
   * ZADD the member, then ZCOUNT / GET `.t` / GET `.s` (and EXPIRE) in the
   * same MULTI; the caller that makes the count equal size + delta gets the
   * members (ZRANGE, header order). A spoiled key fails the chord, with
   * what `failure` gives stored by the claim (see {@link RedisChords.#spoiled}).
   */
  async partReturn(part: ChordPart, failure?: ChordFailure): Promise<ChordMember[] | null> {
    // Sent again after its claim went unanswered: a new ZADD would re-create `.j`, its size gone.
    const unanswered = this.#unanswered.get(`${part.groupId}\0${part.taskId}`);
    if (unanswered) return await unanswered();
    const stem = this.key(part.groupId);
    const member = (part.again && await this.#recorded(stem + ".j", part)) ||
      encodeChordMember(part.taskId, part.state, part.resultJson);
    const m = this.#client.multi()
      .zadd(stem + ".j", part.groupIndex ?? "+inf", member)
      .zcount(stem + ".j", "-inf", "+inf")
      .get(stem + ".t")
      .get(stem + ".s");
    if (this.#ttl > 0) {
      m.expire(stem + ".j", this.#ttl).expire(stem + ".t", this.#ttl).expire(
        stem + ".s",
        this.#ttl,
      );
    }
    const replies = await m.exec();
    if (!replies) throw new Error(`Chord ${part.groupId}: the join transaction was aborted`);
    for (const [i, [err]] of replies.entries()) {
      if (!err) continue;
      if (!isWrongType(err)) throw err;
      const suffix = JOIN_KEYS[i];
      return await this.#spoiled(
        part,
        failure,
        suffix,
        { how: "type", read: suffix === ".j" ? "zset" : "string" },
        new ProtocolError(
          `Chord ${part.groupId}: a key of its join (${stem}.j must be a sorted set, ${stem}.s ` +
            `and ${stem}.t strings) holds another type (${err.message}): the chord's body will ` +
            `not run. Something other than Celery or Celeriac wrote it (the worker deletes ` +
            `those keys); send the chord again`,
          { taskId: part.taskId, cause: err },
        ),
      );
    }
    const ready = Number(replies[1][1]);
    const rawDelta = replies[2][1] as string | null;
    const raw = replies[3][1] as string | null;
    const delta = rawDelta === null ? 0 : storedCount(stem + ".t", rawDelta);
    if (delta instanceof ProtocolError) {
      return await this.#spoiled(part, failure, ".t", { how: "value", read: rawDelta! }, delta);
    }
    const size = raw === null ? null : storedCount(stem + ".s", raw);
    if (size instanceof ProtocolError) {
      return await this.#spoiled(part, failure, ".s", { how: "value", read: raw! }, size);
    }
    if (size === null) {
      // Normal for a chord a Python client applied: Celery stores the size as it sends the
      // header's last member, so members run before that are recorded without one and the
      // member that completes the join finds it (as Celery's on_chord_part_return does).
      log.debug(
        "Task {id} of chord {group}: recorded; no size stored yet ({key}), a later member " +
          "completes the join",
        { id: part.taskId, group: part.groupId, key: stem + ".s" },
      );
      return null;
    }
    if (ready !== size + delta) return null;
    const members = await this.#client.celeriacChordSend(
      2,
      stem + ".b",
      stem + ".j",
      part.taskId,
      String(this.#ttl),
      String(ready),
    );
    if (!Array.isArray(members)) {
      log.debug(
        members === null
          ? "Task {id} of chord {group}: joined; the join was sent on and cleaned up meanwhile"
          : "Task {id} of chord {group}: joined again; another member sends the body",
        { id: part.taskId, group: part.groupId },
      );
      return null;
    }
    const joined: ChordMember[] = [];
    for (const text of members) {
      try {
        joined.push(decodeChordMember(text));
      } catch (err) {
        return await this.#spoiled(
          part,
          failure,
          ".j",
          { how: "member", read: text },
          new ProtocolError(
            `Chord ${part.groupId}: an entry of ${stem}.j is no join entry ([1, id, state, ` +
              `result]): ${
                (err as Error).message
              }. The worker deletes the chord's keys; send the chord again`,
            { taskId: part.taskId, cause: err },
          ),
        );
      }
    }
    return joined;
  }

  /**
   * A join that found key `suffix` spoiled: claim the failure ({@link CLAIM_SCRIPT}:
   * DEL the chord's keys while that key is still spoiled as `spoil` says,
   * storing the metas `failure` makes from `err` in the same script) and
   * throw `err` only when this claim deleted them. Members that read the
   * spoiled key at once all come here and one claim wins: the others resolve
   * `null` and the chord fails once, also when a later member's ZADD made a
   * new `.j` before their claim (which then leaves it). With `.s` gone no
   * later member completes the join. On a Cluster the metas' keys are in
   * other slots than the chord's: they are stored just before the claim
   * (by each member that read the key spoiled, the same FAILURE), so no
   * crash leaves the keys gone and the chord unfailed there either. The
   * claim is kept, under a fresh id, until its reply comes: a join sent
   * again sends it again ({@link CLAIM_SCRIPT} answers 1 if `.c` holds the id).
   */
  async #spoiled(
    part: ChordPart,
    failure: ChordFailure | undefined,
    suffix: ChordKey,
    spoil: Spoil,
    err: ProtocolError,
  ): Promise<null> {
    const stem = this.key(part.groupId);
    const entries = failure?.(err) ?? [];
    if (this.#cluster) await this.#metas.store(entries);
    const metas = this.#cluster ? [] : entries;
    const id = crypto.randomUUID();
    const pending = `${part.groupId}\0${part.taskId}`;
    const claim = async (): Promise<null> => {
      let claimed;
      try {
        claimed = await this.#client.celeriacChordClaim(
          CLAIM_KEYS.length + 2 + metas.length,
          ...CLAIM_KEYS.map((k) => stem + k),
          stem + ".c",
          stem + ".b",
          ...metas.map((e) => this.#metas.key(e.taskId)),
          String(CLAIM_KEYS.indexOf(suffix) + 1),
          spoil.how,
          spoil.read,
          String(this.#ttl),
          id,
          String(CLAIM_MARK_SECONDS),
          ...metas.map((e) => e.meta),
        );
      } catch (e) {
        // Only a reply a lost connection took may have been a claim that ran.
        if (!isConnectionFailure(e)) this.#unanswered.delete(pending);
        throw e;
      }
      this.#unanswered.delete(pending);
      if (Number(claimed) === 1) throw err;
      log.debug(
        "Task {id} of chord {group}: not joined; another member found {key} spoiled and " +
          "failed the chord",
        { id: part.taskId, group: part.groupId, key: stem + suffix },
      );
      return null;
    };
    this.#unanswered.set(pending, claim);
    return await claim();
  }

  /** DEL `.j`, `.t`, `.s` once the body was sent, as Celery does (and `.c`, `.b`, Celeriac's). */
  async cleanup(groupId: string): Promise<void> {
    const stem = this.key(groupId);
    await this.#client.multi().del(stem + ".j").del(stem + ".t").del(stem + ".s").del(stem + ".c")
      .del(stem + ".b").exec();
  }

  /** SETEX + PUBLISH a saved group meta. */
  saveGroup(groupId: string, meta: string): Promise<void> {
    return this.#setAndPublish(this.key(groupId), meta);
  }

  /** GET a saved group meta; a key of another type is a ProtocolError naming it. */
  async restoreGroup(groupId: string): Promise<string | null> {
    const key = this.key(groupId);
    try {
      return await this.#client.get(key);
    } catch (err) {
      if (!isWrongType(err)) throw err;
      throw new ProtocolError(
        `Group ${groupId} cannot be restored: Redis key ${key} holds another type, not the ` +
          `string GroupResult.save() stores (${err.message}). Something other than ` +
          `Celery or Celeriac wrote it; delete the key (forget() the group) and save it again`,
        { cause: err },
      );
    }
  }

  /** DEL a saved group meta. */
  async forgetGroup(groupId: string): Promise<void> {
    await this.#client.del(this.key(groupId));
  }
}
