/**
 * The dashboard's links between tasks held: a parent's children, a workflow
 * root's other tasks. Pure: no I/O, no timers.
 *
 * @module
 */

import { OldestKeys } from "../client/oldest_keys.ts";

/** Ids listed under one key at most. */
const MAX_IDS = 1000;

/**
 * Task ids by a key (a parent's id, a root's id), for the tasks a table
 * holds: at most `maxKeys` keys (the oldest key forgotten first) and 1,000
 * ids a key, in the order added. Kept apart from the tasks so that a parent
 * seen after its children finds them.
 *
 * @example
 * ```ts
 * import { TaskLinks } from "./task_links.ts";
 * const children = new TaskLinks(10_000);
 * children.add("parent-1", "child-1");
 * children.get("parent-1"); // ["child-1"]
 * children.remove("parent-1", "child-1");
 * children.get("parent-1"); // []
 * ```
 */
export class TaskLinks {
  readonly #ids = new Map<string, string[]>();
  readonly #oldest = new OldestKeys(this.#ids);
  readonly #maxKeys: number;

  /**
   * No links yet.
   *
   * @param maxKeys keys held at most (the table's maxTasks)
   */
  constructor(maxKeys: number) {
    this.#maxKeys = maxKeys;
  }

  /**
   * List `id` under `key`.
   *
   * @param key the parent's or root's id
   * @param id the task's id
   */
  add(key: string, id: string): void {
    let ids = this.#ids.get(key);
    if (!ids) {
      ids = [];
      this.#ids.set(key, ids);
      if (this.#ids.size > this.#maxKeys) this.#oldest.evict();
    }
    if (ids.length < MAX_IDS) ids.push(id);
  }

  /**
   * Remove an evicted task's `id` from under `key`, and the key once it lists
   * no task: the links list only tasks held. Found first in the usual case:
   * tasks go in about the order they came.
   *
   * @param key the parent's or root's id
   * @param id the task's id
   */
  remove(key: string, id: string): void {
    const ids = this.#ids.get(key);
    if (!ids) return;
    const i = ids.indexOf(id);
    if (i < 0) return;
    if (ids.length === 1) this.#ids.delete(key);
    else ids.splice(i, 1);
  }

  /**
   * The ids listed under `key`, in the order added (at most 1,000).
   *
   * @param key the parent's or root's id
   * @returns the ids
   */
  get(key: string): readonly string[] {
    return this.#ids.get(key) ?? [];
  }
}
