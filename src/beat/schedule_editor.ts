/**
 * Run-time schedule changes: entries added, changed and removed while beat
 * runs, kept in the schedule store (as RedBeat keeps them in Redis), and
 * the merged view the leader sends from. `PeriodicTasks`
 * (periodic_tasks.ts) and the beat's loop import it on first use.
 *
 * @module
 */

import { lazyLogger } from "../client/lazy_logger.ts";
import type { Celery } from "../client/app.ts";
import type { BeatEntry } from "../client/beat_config.ts";
import { openScheduleStore } from "../client/transports.ts";
import { maskPassword, withUrlSource } from "../broker/errors.ts";
import type { ScheduleStore } from "../broker/schedule_store.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import { pyJsonLoadsFloats } from "../protocol/json_floats.ts";
import { compileEntry, type ScheduledEntry } from "./entry.ts";
import { checkEntryArgs } from "./entry_args.ts";
import { BeatEntryError, BeatStoreError } from "./errors.ts";
import { decodeRunState } from "./run_state.ts";
import type { ScheduleRow, TypedBeatEntry } from "./periodic_tasks.ts";

const log = lazyLogger(["celeriac", "beat"]);

/**
 * What a stored entry holds in place of an entry of the app's config that was removed.
 *
 * @example
 * ```ts
 * import { REMOVED } from "./schedule_editor.ts";
 * const hidden = (stored: Map<string, string>, name: string) => stored.get(name) === REMOVED;
 * ```
 */
export const REMOVED = '{"removed":true}';

/**
 * Open the schedule store of an app (its `beatStore`, by default the broker).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { openAppScheduleStore } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const store = await openAppScheduleStore(app);
 * await store.close();
 * ```
 *
 * @param app the app
 * @param namespace key namespace (default the app's `beatNamespace`)
 * @returns the open store
 * @throws {BeatStoreError} when the broker is `amqp://` and no `beatStore` is set
 * @throws {BrokerConnectionError} when the store cannot be reached, saying where its URL came
 *   from (the `beatStore` option / `--beat-store`, or the broker's URL by default)
 */
export async function openAppScheduleStore(
  app: Celery,
  namespace?: string,
): Promise<ScheduleStore> {
  const url = app.config.beatStore;
  if (url === null) {
    throw new BeatStoreError(
      `Beat needs a store for its leader lease and last runs, and RabbitMQ (${
        maskPassword(app.config.broker)
      }) cannot be one: set beatStore to a redis:// or kv:// URL ` +
        `(new Celery({ beatStore: "redis://127.0.0.1:6379/0" }) or --beat-store)`,
    );
  }
  try {
    return await openScheduleStore(url, { namespace: namespace ?? app.config.beatNamespace });
  } catch (err) {
    throw withUrlSource(err, app.urlSources.beatStore);
  }
}

/**
 * What a `PeriodicTasks` (periodic_tasks.ts) does, behind it: it imports this
 * module on its first call.
 *
 * @example
 * ```ts ignore
 * const editor = new ScheduleEditor(app);
 * await editor.add("tick", { task: "tasks.tick", schedule: "10s" });
 * await editor.close();
 * ```
 */
export class ScheduleEditor {
  readonly #app: Celery;
  readonly #namespace?: string;
  #store: Promise<ScheduleStore> | null = null;
  readonly #invalid = new Map<string, string>();
  readonly #owned: boolean;

  /**
   * Edit an app's schedule. Nothing connects until the first call.
   *
   * @param app the app whose schedule is edited
   * @param options key namespace (default the app's `beatNamespace`), or an open store to use
   */
  constructor(app: Celery, options: { namespace?: string; store?: ScheduleStore } = {}) {
    this.#app = app;
    this.#namespace = options.namespace;
    this.#owned = !options.store;
    if (options.store) this.#store = Promise.resolve(options.store);
  }

  /** The schedule store, opened on first use. */
  store(): Promise<ScheduleStore> {
    this.#store ??= openAppScheduleStore(this.#app, this.#namespace).catch((err) => {
      this.#store = null;
      throw err;
    });
    return this.#store;
  }

  /**
   * Add an entry, or replace the entry of that name (also one of the
   * app's config). Checked first: a bad entry is refused, not stored.
   *
   * @param name the entry name
   * @param entry the entry
   * @throws {BeatEntryError} naming the field at fault
   */
  async add<A extends unknown[]>(name: string, entry: TypedBeatEntry<A>): Promise<void> {
    const plain: BeatEntry = {
      ...entry,
      task: typeof entry.task === "string" ? entry.task : entry.task.name,
    } as BeatEntry;
    await checkEntryArgs(this.#app, compileEntry(name, plain, this.#app.config.timezone));
    await (await this.store()).putEntry(name, pyJsonDumps(plain));
  }

  /**
   * Remove an entry (one added at run time, or one of the app's config,
   * which stays removed until added again). Its last-run state is dropped.
   *
   * @param name the entry name
   * @returns whether there was such an entry
   */
  async remove(name: string): Promise<boolean> {
    const store = await this.store();
    const inConfig = Object.hasOwn(this.#app.config.beatSchedule, name);
    const stored = (await store.readEntries()).get(name);
    if (inConfig) {
      if (stored === REMOVED) return false;
      await store.putEntry(name, REMOVED);
    } else if (!(await store.deleteEntry(name))) {
      return false;
    }
    await store.deleteRun(name);
    return true;
  }

  /**
   * The entries in force: the app's config, overridden by the store.
   * Invalid entries are logged (once per version) and left out.
   *
   * @returns the compiled entries
   */
  async entries(): Promise<ScheduledEntry[]> {
    return (await this.#collect()).filter((e): e is ScheduledEntry => !("error" in e));
  }

  async #collect(): Promise<(ScheduledEntry | { name: string; error: string; task: string })[]> {
    const stored = await (await this.store()).readEntries();
    const tz = this.#app.config.timezone;
    const out: (ScheduledEntry | { name: string; error: string; task: string })[] = [];
    const names = new Set([...Object.keys(this.#app.config.beatSchedule), ...stored.keys()]);
    for (const name of [...names].sort()) {
      const raw = stored.get(name);
      if (raw === REMOVED) continue;
      let entry: BeatEntry;
      try {
        entry = raw === undefined
          ? this.#app.config.beatSchedule[name]
          : pyJsonLoadsFloats(raw) as BeatEntry;
        out.push(compileEntry(name, entry, tz));
      } catch (err) {
        const message = err instanceof BeatEntryError
          ? err.message
          : `beat entry "${name}": stored value is not JSON (${(err as Error).message})`;
        const key = `${name}\n${raw ?? "config"}`;
        if (this.#invalid.get(name) !== key) {
          this.#invalid.set(name, key);
          log.error("{message}; the entry is skipped, the others run", { message });
        }
        out.push({ name, error: message, task: String((entry! as BeatEntry)?.task ?? "?") });
      }
    }
    return out;
  }

  /**
   * The schedule table: every entry with its last and next run, and the
   * entries of the app's config that `remove` hides.
   *
   * @returns one row per entry, by name
   */
  async list(): Promise<ScheduleRow[]> {
    const store = await this.store();
    const [entries, runs, stored] = await Promise.all([
      this.#collect(),
      store.readRuns(),
      store.readEntries(),
    ]);
    const removed: ScheduleRow[] = [...stored]
      .filter(([name, raw]) =>
        raw === REMOVED && Object.hasOwn(this.#app.config.beatSchedule, name)
      )
      .map(([name]) => ({
        name,
        task: String(this.#app.config.beatSchedule[name]?.task ?? "?"),
        schedule: "-",
        origin: "config",
        lastRunAt: null,
        totalRunCount: 0,
        nextRunAt: null,
        removed: true,
      }));
    const rows: ScheduleRow[] = entries.map((e) => {
      const origin = stored.has(e.name) ? "store" : "config";
      const state = decodeRunState(runs.get(e.name));
      if ("error" in e) {
        return {
          name: e.name,
          task: e.task,
          schedule: "-",
          origin,
          lastRunAt: null,
          totalRunCount: 0,
          nextRunAt: null,
          error: e.error,
        };
      }
      const base = state ?? { lastRunAt: Date.now(), totalRunCount: 0 };
      const next = e.schedule.nextRunAt(base);
      return {
        name: e.name,
        task: e.task,
        schedule: e.schedule.description,
        origin,
        lastRunAt: state ? new Date(state.lastRunAt) : null,
        totalRunCount: state?.totalRunCount ?? 0,
        nextRunAt: next === null ? null : new Date(next),
      };
    });
    return [...rows, ...removed].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /** Close the store, if this object opened it (a store given to it stays open). */
  async close(): Promise<void> {
    const store = this.#store;
    this.#store = null;
    if (this.#owned) await store?.then((s) => s.close(), () => {});
  }
}
