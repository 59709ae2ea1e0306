/**
 * Acknowledgements that ride on the next take script: a worker acknowledges
 * a batch as its tasks start (or once their results are stored, late) and
 * takes again in the same turn of the event loop; that take's script
 * removes them from `unacked` and `unacked_index` in its own call, before
 * it takes anything, where they were a transaction of their own (one more
 * command, write and Redis wake-up per batch).
 *
 * @module
 */

/** Acknowledgements asked for together, and how their caller is answered. */
export interface AckRide {
  /** The delivery tags. */
  readonly tags: readonly string[];
  /** Told that they are acknowledged. */
  readonly done: () => void;
  /** Told that acknowledging them failed. */
  readonly failed: (err: unknown) => void;
}

/**
 * The acknowledgements waiting for a take script. Those no take carries
 * before the event loop's next timer phase (no take followed: the worker
 * holds its max, or it stopped) are acknowledged on their own then, as are
 * those of a take script that failed, and at once those asked for while a
 * take waits for a claim (the queues are empty) or the broker closes.
 *
 * @example
 * ```ts
 * import { AckRides } from "./redis_ack_rides.ts";
 * const rides = new AckRides(() => Promise.resolve());
 * const acked = rides.add(["tag-1"]);
 * const carried = rides.board(); // the take script's ARGV gets their tags
 * rides.arrived(carried);
 * await acked;
 * ```
 */
export class AckRides {
  #waiting: AckRide[] = [];
  #count = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Acknowledges tags on their own (a transaction), retrying as an acknowledgement does. */
  readonly #alone: (tags: readonly string[]) => Promise<void>;

  /**
   * @param alone acknowledges tags on their own (a transaction), retrying
   *   while Redis is unreachable as an acknowledgement does
   */
  constructor(alone: (tags: readonly string[]) => Promise<void>) {
    this.#alone = alone;
  }

  /**
   * Ask for tags to be acknowledged by the next take script.
   *
   * @param tags delivery tags whose results are stored
   * @returns a promise settled once they are acknowledged, or acknowledging them failed
   */
  add(tags: readonly string[]): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiting.push({ tags, done: resolve, failed: reject });
    this.#count += tags.length;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, 0);
    return promise;
  }

  /**
   * The acknowledgements a take script carries: each is answered by
   * {@link AckRides.arrived} or {@link AckRides.missed}.
   *
   * @returns them (none waiting: an empty array)
   */
  board(): AckRide[] {
    if (this.#count === 0) return [];
    const rides = this.#waiting;
    this.#waiting = [];
    this.#count = 0;
    return rides;
  }

  /**
   * The take script that carried them replied: they are acknowledged.
   *
   * @param rides what {@link AckRides.board} returned
   */
  arrived(rides: readonly AckRide[]): void {
    for (const r of rides) r.done();
  }

  /**
   * The take script that carried them failed (it may or may not have run):
   * they are acknowledged on their own, as often as an acknowledgement is
   * retried (removing an acknowledged tag again removes nothing).
   *
   * @param rides what {@link AckRides.board} returned
   */
  missed(rides: readonly AckRide[]): void {
    for (const r of rides) this.#alone(r.tags).then(r.done, r.failed);
  }

  /** Acknowledge on their own those no take script carried (the timer; closing). */
  flush(): void {
    if (this.#count === 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.missed(this.board());
  }
}

/**
 * The take script's arguments after its max and sequence id: how many
 * tags it acknowledges first, and the tags.
 *
 * @example
 * ```ts
 * import { rideArgs } from "./redis_ack_rides.ts";
 * rideArgs([{ tags: ["a", "b"], done() {}, failed() {} }]); // ["2", "a", "b"]
 * ```
 *
 * @param rides what `AckRides.board` returned
 * @returns `["0"]` for none
 */
export function rideArgs(rides: readonly AckRide[]): string[] {
  const args = ["0"];
  for (const r of rides) for (const t of r.tags) args.push(t);
  args[0] = String(args.length - 1);
  return args;
}
