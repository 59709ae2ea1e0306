/**
 * The take script of a Redis consumer: one atomic call takes a batch and
 * records it in `unacked` / `unacked_index` and in the consumer's take
 * record; a take whose reply was lost is repeated with the same id, and the
 * script hands over what it recorded instead of taking again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "./port.ts";
import { claimList } from "./redis_claims.ts";
import type { RedisScope } from "./redis_commands.ts";
import { PARKED_KEY, queueOfList, takeOrder } from "./redis_keys.ts";
import type { EarlyDeliveries } from "./redis_early.ts";
import { BodyPack, readTake } from "./redis_bodies.ts";
import { TAKE_SCRIPT } from "./redis_scripts.ts";
import { RespScript } from "./resp_scripts.ts";
import { type FlatStrings, listStrings, respStrings } from "./resp_strings.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

const TAKE = new RespScript(TAKE_SCRIPT);

/** A take whose reply was lost: the next take repeats it with the same id and lists. */
export interface UnsureTake {
  /** The lists it read. */
  lists: string[];
  /** Its sequence id. */
  seq: number;
  /** The list it read first (an early hand-out's claim list), or null. */
  first: string | null;
}

/**
 * One consumer's take script calls: its take record, the sequence id of its
 * next take, the take whose reply was lost.
 *
 * @example
 * ```ts ignore
 * import { TakeScript } from "./redis_take_script.ts";
 * const script = new TakeScript(scope, watchers.id, early);
 * const [deliveries, taken] = await script.run(["celery"], 10, null);
 * ```
 */
export class TakeScript {
  readonly #scope: RedisScope;
  readonly #watcherId: string;
  readonly #early: EarlyDeliveries;
  /** This consumer's take record and the sequence id of its last take. */
  readonly #takeRecord = `celeriac.take.${crypto.randomUUID()}`;
  #takeSeq = 0;
  #unsureTake: UnsureTake | null = null;
  readonly #bodies = new BodyPack();
  /** Take scripts sent so far, and whether one is awaiting its reply. */
  #takesSent = 0;
  #taking = false;

  /**
   * @param scope the broker's connection and key prefix
   * @param watcherId the id of the claim watchers whose claim lists a take reads
   * @param early deliveries handed out before their take script replied
   */
  constructor(scope: RedisScope, watcherId: string, early: EarlyDeliveries) {
    this.#scope = scope;
    this.#watcherId = watcherId;
    this.#early = early;
  }

  /** The take whose reply was lost, repeated by the next one; null when none is. */
  get unsure(): UnsureTake | null {
    return this.#unsureTake;
  }

  /** The sequence id of the last take sent. */
  get seq(): number {
    return this.#takeSeq;
  }

  /** How many take scripts were sent so far. */
  get sent(): number {
    return this.#takesSent;
  }

  /** Whether a take script is awaiting its reply. */
  get running(): boolean {
    return this.#taking;
  }

  /** The take record's key (with the key prefix). */
  get recordKey(): string {
    return this.#scope.k(this.#takeRecord);
  }

  /**
   * Whether every list a take of `lists` reads (each queue list and its
   * claim list) is empty, asked with one `EXISTS` on the take script's
   * connection: framed in the turn a take script was framed in, it runs
   * right behind that script. Sent before the script (a connection not
   * ready yet), it finds the claim list the script empties still holding
   * its element, and says no: never empty by mistake.
   *
   * @param lists queue lists, as a take of them gets them
   * @returns a promise of true when all are empty (false when the command
   *   fails); null without a RESP connection (Sentinel, Cluster) or lists
   */
  emptyBehind(lists: readonly string[]): Promise<boolean> | null {
    const s = this.#scope;
    if (!s.resp || lists.length === 0) return null;
    const keys = takeOrder(lists, null).map(([list, claimed]) =>
      s.k(claimed ? claimList(this.#watcherId, list) : list)
    );
    return s.resp.command(["EXISTS", ...keys], Number).then((n) => n === 0, () => false);
  }

  /**
   * Take with the script. When the reply does not arrive (a disconnect), the
   * script may have run: the next take repeats this one with the same id
   * and lists, and the script hands over what it recorded instead of
   * taking again, so nothing waits in `unacked` for the visibility timeout.
   *
   * @param lists queue lists, as a take of them gets them
   * @param max how many messages to take at most
   * @param first the claim list to read first (a repeated take's), or null
   * @param signal the take's: once aborted, a script failing during a
   *   Sentinel or Cluster failover is not sent again (the next take repeats it)
   * @returns the deliveries, and how many elements the script took (parked
   *   ones too: fewer than `max` means it left every list empty)
   */
  async run(
    lists: string[],
    max: number,
    first: string | null,
    signal?: AbortSignal,
  ): Promise<[Delivery[], number]> {
    const s = this.#scope;
    // A higher priority first; within a step, what this broker's waits claimed first (it was
    // sent first).
    const sources: string[] = [];
    const keys: string[] = [];
    for (const [list, claimed] of takeOrder(lists, first)) {
      sources.push(list);
      keys.push(s.k(claimed ? claimList(this.#watcherId, list) : list));
    }
    keys.push(s.k("unacked_index"), s.k("unacked"), s.k(PARKED_KEY), s.k(this.#takeRecord));
    // A take repeating one whose reply was lost uses that take's id; takes never share one.
    const seq = this.#unsureTake?.seq ?? ++this.#takeSeq;
    const args = [String(max), String(seq), ...sources.map(queueOfList)];
    let flat: FlatStrings;
    this.#takesSent++;
    this.#taking = true;
    try {
      flat = s.resp ? await s.resp.evalScriptWhole(TAKE, keys, args, respStrings) : listStrings(
        await s.run(() => s.client.celeriacTake(keys.length, ...keys, ...args), { signal, keys }),
      );
    } catch (err) {
      this.#unsureTake = { lists, seq, first };
      throw err;
    } finally {
      this.#taking = false;
    }
    if (this.#unsureTake !== null && flat.length > 0) {
      log.info("Reconciled a take whose reply was lost: {n} message(s) handed over", {
        n: flat.length / 3,
      });
    }
    this.#unsureTake = null;
    const out = await readTake(s, flat, sources, this.#bodies, this.#early);
    // An early delivery this take did not record is no longer this consumer's.
    if (this.#early.size > 0) this.#early.tookAll(seq);
    return [out, flat.length / 3];
  }
}
