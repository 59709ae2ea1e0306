/**
 * Terminates that wait for the outcomes a Web Worker posted and the main
 * thread has not read yet. A task whose handler returned has its outcome
 * in its Web Worker's shared ring (read at once: `Member.drain`) or in a
 * post (a failure, a retry, a follow-up, a batch of several); Deno drops
 * the posts of a terminated Web Worker not yet delivered, so such a task
 * would be reported lost though it finished (and, requeued, run twice).
 * Its Web Worker starts no task after posting them while a hard time
 * limit's task waits to start (`flushed` in `batch_runner.ts`), so they
 * arrive within a turn or two; a terminate waits for them, at most
 * {@link UNREAD_WAIT_MS}. The Web Worker is halted first (`start_table.ts`):
 * it still posts outcomes, and starts no task it holds meanwhile (one that
 * did would be lost with the thread, or, requeued, run twice).
 *
 * @module
 */

import type { Member } from "./pool_member.ts";

/**
 * The longest a terminate waits for the posted outcomes of its Web
 * Worker's finished tasks, in milliseconds.
 *
 * @example
 * ```ts
 * UNREAD_WAIT_MS; // 1000
 * ```
 */
export const UNREAD_WAIT_MS = 1000;

/**
 * The terminates waiting, by Web Worker.
 *
 * @example
 * ```ts ignore
 * const waits = new UnreadWaits(owners);
 * if (waits.defer(member, () => kill(seq))) return; // kill runs once they are read
 * // where outcomes of `member` are read:
 * waits.read(member);
 * ```
 */
export class UnreadWaits {
  readonly #owners: Iterable<[number, { member: Member }]>;
  readonly #waits = new Map<
    Member,
    { timer: ReturnType<typeof setTimeout>; kills: (() => void)[] }
  >();

  /**
   * @param owners every task of the pool whose outcome was not read yet, with its Web Worker
   */
  constructor(owners: Iterable<[number, { member: Member }]>) {
    this.#owners = owners;
  }

  /**
   * Run `kill` once the outcomes of `member`'s finished tasks are read (or
   * after {@link UNREAD_WAIT_MS}, when they do not come), when there are any.
   *
   * @param member the Web Worker to terminate
   * @param kill the terminate, run once later
   * @returns false when nothing is unread: the caller terminates it now
   */
  defer(member: Member, kill: () => void): boolean {
    const wait = this.#waits.get(member);
    if (wait) {
      wait.kills.push(kill);
      return true;
    }
    if (!this.#unread(member)) return false;
    const timer = setTimeout(() => this.#run(member), UNREAD_WAIT_MS);
    this.#waits.set(member, { timer, kills: [kill] });
    return true;
  }

  /**
   * Outcomes of `member` were read: run its terminates once none is unread.
   *
   * @param member the Web Worker
   */
  read(member: Member): void {
    if (this.#waits.has(member) && !this.#unread(member)) this.#run(member);
  }

  /**
   * Forget the terminates waiting for `member` (it ended another way).
   *
   * @param member the Web Worker
   */
  drop(member: Member): void {
    const wait = this.#waits.get(member);
    if (!wait) return;
    clearTimeout(wait.timer);
    this.#waits.delete(member);
  }

  /** Forget them all (the pool closes). */
  close(): void {
    for (const member of [...this.#waits.keys()]) this.drop(member);
  }

  /** Whether tasks of `member` finished (its start table says) and their outcomes were not read. */
  #unread(member: Member): boolean {
    for (const [seq, o] of this.#owners) {
      if (o.member === member && member.starts.hasFinished(seq)) return true;
    }
    return false;
  }

  #run(member: Member): void {
    const wait = this.#waits.get(member);
    if (!wait) return;
    this.drop(member);
    for (const kill of wait.kills) kill();
  }
}
