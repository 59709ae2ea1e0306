/**
 * {@link GroupResult}: the results of a group (or chunks), typed by the
 * tuple of its members' results.
 *
 * @module
 */

import { decodeGroupMeta, encodeGroupMeta, type ResultTuple } from "../protocol/signature.ts";
import { READY_STATES } from "../protocol/result_meta.ts";
import { AsyncResult, type ResultSource } from "./async_result.ts";
import { checkGetOptions, type GetOptions } from "./get_options.ts";
import type { RevokeOptions } from "./control.ts";
import { TimeoutError } from "./errors.ts";
import { waitSignal } from "./progress.ts";
import { heldReady, holdReady } from "./ready_results.ts";

/** A member of a group: a task result, or a nested group's. */
export type MemberResult = AsyncResult<unknown> | GroupResult<unknown[]>;

/**
 * Build result handles from a result tuple: a group tuple gives a
 * {@link GroupResult}, a task tuple an {@link AsyncResult} (with its
 * `parent` chain).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const r = resultFromTuple({ id: "g", members: [{ id: "a" }] }, app);
 * r.id; // "g"
 * ```
 *
 * @param t the tuple
 * @param source the app whose backend holds the results
 * @returns the handle
 */
export function resultFromTuple(t: ResultTuple, source: ResultSource): MemberResult {
  const parent = t.parent ? resultFromTuple(t.parent, source) : undefined;
  if (t.members) {
    return new GroupResult(t.id, t.members.map((m) => resultFromTuple(m, source)), source, parent);
  }
  return new AsyncResult(t.id, source, parent);
}

function leaves(r: MemberResult): AsyncResult<unknown>[] {
  return r instanceof GroupResult ? r.children.flatMap(leaves) : [r];
}

/**
 * The results of a group, typed by its members' results. Waiting is
 * push-based through the app's one result subscription (no polling).
 *
 * @example
 * ```ts
 * import { Celery, group } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const res = await group([add.s(1, 1), add.s(2, 2)]).applyAsync();
 * const [a, b] = await res.get({ timeout: 10_000 }); // [2, 4]
 * for await (const member of res.results()) console.log(member.id, await member.state());
 * ```
 */
export class GroupResult<T extends unknown[] = unknown[]> {
  /** The group id. */
  readonly id: string;
  /** Member results, in group order (Celery's `results` / `children`). */
  readonly children: readonly MemberResult[];
  /** For a group that ran after another task (chains), that task's result. */
  readonly parent: MemberResult | undefined;
  readonly #source: ResultSource;

  /**
   * Create a handle (usually through `group(...).applyAsync()` or
   * `app.restoreGroup(id)`).
   *
   * @param id the group id
   * @param results member results, in order
   * @param source the app whose backend holds the results
   * @param parent the previous step's result, in a chain
   */
  constructor(
    id: string,
    results: readonly MemberResult[],
    source: ResultSource,
    parent?: MemberResult,
  ) {
    this.id = id;
    this.children = results;
    this.#source = source;
    this.parent = parent;
  }

  /**
   * Wait for every member and return their values in group order. The
   * first failed member (in group order) is thrown as its `TaskError`.
   *
   * @param options timeout (ms, for the whole group) and abort signal
   * @returns the values
   * @throws {TaskError} when a member failed
   * @throws {TimeoutError} when the timeout passed first
   */
  async get(options: GetOptions = {}): Promise<T> {
    checkGetOptions(options, "get()");
    const wait = waitSignal(options);
    let settled: PromiseSettledResult<unknown>[];
    try {
      settled = await Promise.allSettled(
        this.children.map((r) =>
          r.get({ signal: wait.signal, followParents: options.followParents })
        ),
      );
    } finally {
      wait.release();
    }
    const values: unknown[] = [];
    for (const s of settled) {
      if (s.status === "fulfilled") {
        values.push(s.value);
        continue;
      }
      if (wait.timedOut && !options.signal?.aborted) {
        throw new TimeoutError(this.id, options.timeout!);
      }
      throw s.reason;
    }
    return values as T;
  }

  /**
   * Celery's `join()`: the same as {@link GroupResult.get}.
   *
   * @param options timeout (ms) and abort signal
   * @returns the values in group order
   */
  join(options: GetOptions = {}): Promise<T> {
    return this.get(options);
  }

  #states(): Promise<string[]> {
    return Promise.all(leaves(this).map((r) => r.state()));
  }

  /**
   * Whether every member has finished.
   *
   * @returns true when all are SUCCESS, FAILURE or REVOKED
   */
  async ready(): Promise<boolean> {
    return (await this.#states()).every((s) => READY_STATES.has(s as never));
  }

  /**
   * Whether every member succeeded.
   *
   * @returns true when all are SUCCESS
   */
  async successful(): Promise<boolean> {
    return (await this.#states()).every((s) => s === "SUCCESS");
  }

  /**
   * Whether any member failed or was revoked.
   *
   * @returns true when one is FAILURE or REVOKED
   */
  async failed(): Promise<boolean> {
    return (await this.#states()).some((s) => s === "FAILURE" || s === "REVOKED");
  }

  /**
   * How many members succeeded (Celery's `completed_count`).
   *
   * @returns the count
   */
  async completedCount(): Promise<number> {
    return (await this.#states()).filter((s) => s === "SUCCESS").length;
  }

  /**
   * Members as they finish, in completion order (each is ready when
   * yielded: its `get()` returns at once, or throws its error).
   *
   * @param options abort signal
   * @yields each member result once it is ready
   */
  async *results(options: { signal?: AbortSignal } = {}): AsyncGenerator<AsyncResult<unknown>> {
    const backend = await this.#source.resultBackend();
    const members = leaves(this);
    const pending = new Map(
      members.map((r, i) => [
        i,
        (heldReady(r) ? Promise.resolve(heldReady(r)) : backend.waitFor(r.id, options.signal))
          .then((meta) => holdReady(r, meta)).then(() => i, () => i),
      ]),
    );
    while (pending.size > 0) {
      const i = await Promise.race(pending.values());
      pending.delete(i);
      options.signal?.throwIfAborted();
      yield members[i];
    }
  }

  /**
   * Revoke every member on every worker.
   *
   * @param options terminate, signal
   * @throws {TypeError} when the handle was made without an app
   */
  async revoke(options: RevokeOptions = {}): Promise<void> {
    const control = this.#source.control;
    if (!control) throw new TypeError("This GroupResult has no app to revoke through");
    await control.revoke(leaves(this).map((r) => r.id), options);
  }

  /** The result tuple, as Celery stores it. */
  asTuple(): ResultTuple {
    return {
      id: this.id,
      members: this.children.map((r) => r instanceof GroupResult ? r.asTuple() : { id: r.id }),
    };
  }

  /**
   * Store the group under `celery-taskset-meta-<id>` so another process
   * (Python's `GroupResult.restore(id)`, or `app.restoreGroup(id)`) can
   * find its members.
   *
   * @throws {TypeError} when the backend cannot store groups (rpc://)
   */
  async save(): Promise<void> {
    const backend = await this.#source.resultBackend();
    if (!backend.saveGroup) {
      throw new TypeError(
        `The "${backend.transport}" result backend cannot save groups: use redis:// or kv://`,
      );
    }
    await backend.saveGroup(this.id, encodeGroupMeta(this.id, this.asTuple().members!));
  }

  /** Delete every member's result and the saved group. */
  async forget(): Promise<void> {
    const backend = await this.#source.resultBackend();
    await Promise.all(leaves(this).map((r) => backend.forget(r.id)));
    await backend.forgetGroup?.(this.id);
  }

  /**
   * Read a saved group (Celery's `GroupResult.restore`).
   *
   * @param id the group id
   * @param source the app
   * @returns the group, or `null` when none is saved under this id
   */
  static async restore<T extends unknown[] = unknown[]>(
    id: string,
    source: ResultSource,
  ): Promise<GroupResult<T> | null> {
    const backend = await source.resultBackend();
    const raw = await backend.restoreGroup?.(id);
    if (raw === null || raw === undefined) return null;
    return resultFromTuple(decodeGroupMeta(raw), source) as GroupResult<T>;
  }
}
