/**
 * The tasks a running task sends (Celery's `children`): messages published
 * from a Web Worker, or by a task the inline pool runs on the main thread,
 * carry the sender's id as `parent_id`; they are noted here (through the
 * pool's `onPublish` or `onSent`) and written into the sender's result meta
 * when it finishes. Members
 * of one group are recorded as one group tuple, as Celery does.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";

/** Parents tracked at most; the oldest are forgotten first (a parent that never finishes here). */
const MAX_PARENTS = 10_000;

/** Children of running tasks, by parent id. */
export class ChildrenTracker {
  readonly #byParent = new Map<string, ResultTuple[]>();

  /**
   * Note a message published by a running task.
   *
   * @param message the task message (protocol 2 headers)
   * @param child the sender's entry for it, when a canvas sent it: the
   *   canvas's entry with its first message, `null` with the others (see
   *   `Publisher`); absent: read from the message (a task, or a member of
   *   the group in its `group` header)
   */
  record(message: Message, child?: ResultTuple | null): void {
    const h = message.headers;
    const parent = h.parent_id;
    const id = h.id;
    if (child === null) return;
    if (typeof parent !== "string" || typeof id !== "string" || parent === id) return;
    let list = this.#byParent.get(parent);
    if (!list) {
      if (this.#byParent.size >= MAX_PARENTS) {
        this.#byParent.delete(this.#byParent.keys().next().value!);
      }
      this.#byParent.set(parent, list = []);
    }
    const group = typeof h.group === "string" ? h.group : null;
    if (child) list.push(child);
    else if (group) {
      const g = list.find((t) => t.id === group && t.members);
      if (g) g.members!.push({ id });
      else list.push({ id: group, members: [{ id }] });
    } else list.push({ id });
  }

  /** How many tasks have children noted. */
  get size(): number {
    return this.#byParent.size;
  }

  /**
   * The children noted for a task, kept.
   *
   * @example
   * ```ts ignore
   * const kept = tracker.peek(req.id);
   * ```
   *
   * @param parentId the task's id
   * @returns its children, in sending order, if any were noted
   */
  peek(parentId: string): ResultTuple[] | undefined {
    return this.#byParent.get(parentId);
  }

  /**
   * Note again the children {@link ChildrenTracker.take} gave for a task
   * whose settlement failed: the next attempt stores them.
   *
   * @example
   * ```ts ignore
   * tracker.restore(req.id, kept);
   * ```
   *
   * @param parentId the task's id
   * @param children what `peek` gave before the failed attempt
   */
  restore(parentId: string, children: ResultTuple[]): void {
    this.#byParent.set(parentId, children);
  }

  /**
   * The children noted for a task, forgetting them.
   *
   * @param parentId the finished task's id
   * @returns its children, in sending order
   */
  take(parentId: string): ResultTuple[] {
    // Asked for every finished task; while no task sent any (the usual case) the lookup is not
    // made: a first Map lookup of a task id computes the string's hash (~1 µs).
    if (this.#byParent.size === 0) return [];
    const list = this.#byParent.get(parentId) ?? [];
    this.#byParent.delete(parentId);
    return list;
  }
}
