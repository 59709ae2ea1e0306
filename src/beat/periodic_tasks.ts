/**
 * Run-time schedule changes: {@link PeriodicTasks} adds, changes and removes
 * entries while beat runs, in the schedule store. Its code
 * (schedule_editor.ts, and the store's with it) is imported on its first
 * call: an app's tasks module imports `PeriodicTasks` with the rest of
 * `@celeriac/celeriac`, and so does each Web Worker of a Celeriac worker,
 * which never calls it.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { BeatEntry } from "../client/beat_config.ts";
import type { Task } from "../client/task.ts";
import type { ScheduleStore } from "../broker/schedule_store.ts";
import type { ScheduledEntry } from "./entry.ts";
import type { ScheduleEditor } from "./schedule_editor.ts";

/**
 * One row of the schedule table (`worker.ts beat --list`).
 *
 * @example
 * ```ts
 * import { Celery, PeriodicTasks } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const periodic = new PeriodicTasks(app);
 * for (const row of await periodic.list()) console.log(row.name, row.nextRunAt?.toISOString());
 * ```
 */
export interface ScheduleRow {
  /** Entry name. */
  name: string;
  /** Task name. */
  task: string;
  /** The schedule, described. */
  schedule: string;
  /** `config` (the app's beatSchedule) or `store` (added at run time). */
  origin: "config" | "store";
  /** Last run (or first sight), if known. */
  lastRunAt: Date | null;
  /** Runs so far. */
  totalRunCount: number;
  /** Next run, or `null` when it will not run again. */
  nextRunAt: Date | null;
  /** Why the entry is skipped, when it is invalid. */
  error?: string;
  /** An entry of the app's config that `remove` hides (until `add` gives it again). */
  removed?: true;
}

/**
 * Typed form of an entry for a local task: `args` match the task's.
 *
 * @example
 * ```ts
 * import { Celery, PeriodicTasks } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const buildReport = app.task("reports.build", (year: number) => `report ${year}`);
 * const periodic = new PeriodicTasks(app);
 * await periodic.add("report", { task: buildReport, schedule: "1h", args: [2024] });
 * ```
 */
export interface TypedBeatEntry<A extends unknown[]> extends Omit<BeatEntry, "task" | "args"> {
  /** The task handle, or a task name. */
  task: Task<A, unknown> | string;
  /** Positional arguments, checked against the task's parameters. */
  args?: NoInfer<A>;
}

/**
 * Add, change and remove periodic tasks at run time. Changes go to the
 * schedule store, where the running beat leader picks them up on its next
 * wake-up (within `--max-interval`, default 5 s) without a restart.
 *
 * @example
 * ```ts
 * import { Celery, PeriodicTasks } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const periodic = new PeriodicTasks(app);
 * await periodic.add("tick", { task: "tasks.tick", schedule: "10s", args: [1] });
 * await periodic.remove("tick");
 * await periodic.close();
 * ```
 */
export class PeriodicTasks {
  readonly #app: Celery;
  readonly #options: { namespace?: string; store?: ScheduleStore };
  /** The editor, once the first call has imported its module. */
  #editor: Promise<ScheduleEditor> | null = null;

  /**
   * Edit an app's schedule. Nothing connects until the first call.
   *
   * @param app the app whose schedule is edited
   * @param options key namespace (default the app's `beatNamespace`), or an open store to use
   */
  constructor(app: Celery, options: { namespace?: string; store?: ScheduleStore } = {}) {
    this.#app = app;
    this.#options = options;
  }

  #edit(): Promise<ScheduleEditor> {
    this.#editor ??= import("./schedule_editor.ts").then(({ ScheduleEditor }) =>
      new ScheduleEditor(this.#app, this.#options)
    );
    return this.#editor;
  }

  /**
   * The schedule store, opened on first use.
   *
   * @returns the open store
   */
  async store(): Promise<ScheduleStore> {
    return await (await this.#edit()).store();
  }

  /**
   * Add an entry, or replace the entry of that name (also one of the
   * app's config). Checked first: a bad entry is refused, not stored —
   * also args/kwargs its serializer cannot encode, or that the handler of
   * a task this app registers cannot take.
   *
   * @param name the entry name
   * @param entry the entry
   * @throws {BeatEntryError} naming the field at fault
   */
  async add<A extends unknown[]>(name: string, entry: TypedBeatEntry<A>): Promise<void> {
    await (await this.#edit()).add(name, entry);
  }

  /**
   * Remove an entry (one added at run time, or one of the app's config,
   * which stays removed until added again). Its last-run state is dropped.
   *
   * @param name the entry name
   * @returns whether there was such an entry
   */
  async remove(name: string): Promise<boolean> {
    return await (await this.#edit()).remove(name);
  }

  /**
   * The entries in force: the app's config, overridden by the store.
   * Invalid entries are logged (once per version) and left out.
   *
   * @returns the compiled entries
   */
  async entries(): Promise<ScheduledEntry[]> {
    return await (await this.#edit()).entries();
  }

  /**
   * The schedule table: every entry with its last and next run, and the
   * entries of the app's config that `remove` hides.
   *
   * @returns one row per entry, by name
   */
  async list(): Promise<ScheduleRow[]> {
    return await (await this.#edit()).list();
  }

  /** Close the store, if this object opened it (a store given to it stays open). */
  async close(): Promise<void> {
    const editor = await this.#editor?.catch(() => null);
    await editor?.close();
  }
}
