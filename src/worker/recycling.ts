/**
 * When a pool Web Worker retires: after a number of tasks, or when its
 * memory grows past a bound (Celery's `--max-tasks-per-child` and
 * `--max-memory-per-child`). A retiring Web Worker takes no new task,
 * finishes what it holds, and is replaced.
 *
 * @module
 */

/**
 * Recycling bounds of the Web Workers of a pool.
 *
 * @example
 * ```ts
 * import type { RecycleOptions } from "@celeriac/celeriac/worker";
 * const options: RecycleOptions = { maxTasksPerChild: 1000, maxMemoryPerChild: 200_000 };
 * ```
 */
export interface RecycleOptions {
  /** Tasks a Web Worker runs before it is replaced [`worker_max_tasks_per_child`]. */
  maxTasksPerChild?: number;
  /**
   * Memory bound in KiB (1024 bytes, Celery's unit)
   * [`worker_max_memory_per_child`]: a Web Worker whose V8 heap (used heap
   * plus external memory such as ArrayBuffers) exceeds it after a task is
   * replaced.
   */
  maxMemoryPerChild?: number;
}

/**
 * Decides when a Web Worker retires.
 *
 * @example
 * ```ts
 * import { RecyclePolicy } from "@celeriac/celeriac/worker";
 * const policy = new RecyclePolicy({ maxTasksPerChild: 10, maxMemoryPerChild: 1024 });
 * policy.full(9); // false: it may take a 10th task
 * policy.full(10); // true: no more tasks for it
 * policy.overMemory(2 * 1024 * 1024); // true: 2 MiB used, bound 1 MiB
 * policy.measuresMemory; // true: Web Workers report their heap with outcomes
 * ```
 */
export class RecyclePolicy {
  readonly #maxTasks: number | null;
  readonly #maxBytes: number | null;

  /**
   * Set the bounds; none means Web Workers are never replaced.
   *
   * @param options the bounds
   * @throws {RangeError} for bounds that are not positive whole numbers
   */
  constructor(options: RecycleOptions = {}) {
    for (const [name, v] of Object.entries(options)) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
        throw new RangeError(`${name} must be a whole number >= 1, got ${v}`);
      }
    }
    this.#maxTasks = options.maxTasksPerChild ?? null;
    this.#maxBytes = options.maxMemoryPerChild === undefined
      ? null
      : options.maxMemoryPerChild * 1024;
  }

  /** Whether Web Workers must report their memory use. */
  get measuresMemory(): boolean {
    return this.#maxBytes !== null;
  }

  /**
   * Whether a Web Worker that was given `assigned` tasks may take no more.
   *
   * @param assigned tasks handed to it so far
   * @returns true when it must retire once they finish
   */
  full(assigned: number): boolean {
    return this.#maxTasks !== null && assigned >= this.#maxTasks;
  }

  /**
   * Whether a Web Worker's reported memory exceeds the bound.
   *
   * @param bytes its heap in bytes
   * @returns true when it must retire
   */
  overMemory(bytes: number): boolean {
    return this.#maxBytes !== null && bytes > this.#maxBytes;
  }
}
