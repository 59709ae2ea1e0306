// deno-lint-ignore-file no-console
/**
 * The `beat` and `schedule` sub-commands, and `worker -B`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { maskPassword } from "../broker/errors.ts";
import type { Celery } from "../client/app.ts";
import type { BeatEntry, ScheduleSpec } from "../client/beat_config.ts";
import { Beat } from "../beat/beat.ts";
import { at } from "../beat/crontab.ts";
import { BeatEntryError } from "../beat/errors.ts";
import { PeriodicTasks, type ScheduleRow } from "../beat/periodic_tasks.ts";
import { unregisteredTask } from "./call.ts";
import { retryOnStartup } from "./connect_retry.ts";
import { jsonFlag } from "./flag_json.ts";
import { positiveNumber, wholeNumber } from "./flag_numbers.ts";
import { privateBroker } from "./inspect.ts";
import { EXIT_CODES, UsageError } from "./exit_codes.ts";
import { checkUrlFlag } from "./url_flags.ts";

const log = getLogger(["celeriac", "cli"]);

/** The command-line options of beat and schedule, for `parseArgs`. */
export const BEAT_OPTIONS = {
  beat: { type: "boolean", short: "B" },
  list: { type: "boolean" },
  "max-interval": { type: "string" },
  "lease-time": { type: "string" },
  "beat-store": { type: "string" },
  schedule: { type: "string", short: "s" },
  task: { type: "string" },
  every: { type: "string" },
  cron: { type: "string" },
  at: { type: "string" },
  args: { type: "string", short: "a" },
  kwargs: { type: "string", short: "k" },
  queue: { type: "string" },
  expires: { type: "string" },
  priority: { type: "string" },
} as const;

/**
 * The actions of `schedule`.
 *
 * @example
 * ```ts
 * SCHEDULE_ACTIONS; // ["list", "add", "remove"]
 * ```
 */
export const SCHEDULE_ACTIONS: readonly string[] = ["list", "add", "remove"];

/** Usage lines of beat and schedule. */
export const BEAT_USAGE = `
  deno run -A worker.ts beat --app ./tasks.ts [--max-interval S] [--lease-time S] [--list]
                                                       send periodic tasks (any number of
                                                       replicas: one leader sends)
  deno run -A worker.ts schedule list|add|remove ...   change the schedule while beat runs:
      schedule add NAME --task T (--every 10s | --cron "0 3 * * *" | --at ISO)
                   [--args JSON] [--kwargs JSON] [--queue Q] [--expires S] [--priority N]
      schedule remove NAME

Beat options:
  -B, --beat                 worker: also run beat in this process (safe with replicas)
      --list                 beat: print the schedule table and exit
      --max-interval SECONDS longest sleep of beat; run-time changes arrive within it (default 5)
      --lease-time SECONDS   leader lease; a dead leader is replaced within it (default 15)
      --beat-store URL       where the lease and last runs live (default: the broker;
                             required with an amqp:// broker: a redis:// or kv:// URL)
  -s, --schedule FILE        Celery's schedule file: accepted, not used (beat's state is
                             in --beat-store; says where); a file: --beat-store kv://FILE
      --task NAME            schedule add: the task to send, by its registered name
      --every INTERVAL       schedule add: send every 10s, 5m, 1h, 1d or 500ms (a bare
                             number is seconds)
      --cron EXPR            schedule add: send at a 5-field crontab, "0 3 * * *" (minute hour
                             day-of-month month day-of-week), in the time zone of beat's app
                             (its timezone option or CELERY_TIMEZONE, default UTC)
      --at ISO               schedule add: send once, at an ISO 8601 time with an offset
                             (2027-01-01T09:00:00Z)
      --priority N           schedule add: the message's priority, 0..255 (Redis and KV: 0 is
                             most urgent, 0..9; RabbitMQ: higher first, up to ?max_priority=)`;

type Values = Record<string, string | boolean | undefined>;

/**
 * Apply `--beat-store` to the app before anything connects; for Celery's
 * `-s/--schedule FILE`, say where beat's state is instead (a warning).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * configureBeatStore(app, { "beat-store": "redis://127.0.0.1:6379/0" });
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @throws {UsageError} for an empty `--beat-store`, or a URL of no scheme a beat store has
 */
export function configureBeatStore(app: Celery, values: Values): void {
  const flag = values["beat-store"];
  if (typeof flag === "string") {
    checkUrlFlag("--beat-store", flag);
    app.configure({ beatStore: flag });
  }
  if (typeof values.schedule === "string") {
    const store = app.config.beatStore;
    log.warn(
      "beat: --schedule {file} (Celery's schedule file) is not used: beat keeps its lease and " +
        "last runs in its store{where}; to keep them in a file, give --beat-store kv://{file} " +
        "(replicas on this host only)",
      {
        file: values.schedule,
        where: store === null
          ? " (--beat-store)"
          : `, ${maskPassword(store)}, shared by its replicas`,
      },
    );
  }
}

/**
 * A beat from the command-line flags.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const beat = beatFromFlags(app, { "lease-time": "5" });
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the beat (not started)
 */
export function beatFromFlags(app: Celery, values: Values): Beat {
  return new Beat({
    app,
    maxInterval: positiveNumber(values["max-interval"] as string | undefined, "--max-interval"),
    leaseTime: positiveNumber(values["lease-time"] as string | undefined, "--lease-time"),
  });
}

function printTable(rows: ScheduleRow[], leader: string): void {
  const table = rows.map((r) => [
    r.name,
    r.task,
    r.removed
      ? "REMOVED: not sent (schedule add gives it again)"
      : r.error
      ? `INVALID: ${r.error}`
      : r.schedule,
    r.totalRunCount > 0 ? r.lastRunAt?.toISOString() ?? "-" : "-",
    r.nextRunAt?.toISOString() ?? "-",
    String(r.totalRunCount),
    r.origin,
  ]);
  const head = ["NAME", "TASK", "SCHEDULE", "LAST RUN", "NEXT RUN", "RUNS", "FROM"];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(line(head));
  for (const row of table) console.log(line(row));
  const removed = rows.filter((r) => r.removed).length;
  const active = rows.length - removed;
  console.log(
    `${active} entr${active === 1 ? "y" : "ies"}${
      removed ? ` (and ${removed} removed)` : ""
    }; leader: ${leader}`,
  );
}

async function list(app: Celery): Promise<number> {
  const periodic = new PeriodicTasks(app);
  try {
    const lease = await (await periodic.store()).lease();
    const leader = lease ? `${lease.holder} (token ${lease.token})` : "none";
    printTable(await periodic.list(), leader);
    return 0;
  } finally {
    await periodic.close();
  }
}

/**
 * `worker.ts beat`: run beat until SIGINT/SIGTERM, or print the table with `--list`. The
 * first signal stops beat (a publish hanging on a stalled broker is given up) and closes the
 * app; a second one resolves at once, without waiting for the connections to close.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * Deno.exitCode = await runBeat(app, { list: true });
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the exit code
 */
export async function runBeat(app: Celery, values: Values): Promise<number> {
  configureBeatStore(app, values);
  if (values.list) return await list(app).finally(() => app.close());
  const beat = beatFromFlags(app, values);
  const starting = new AbortController();
  // A second signal exits at once, as the worker's does: closing the app waits (at most a few
  // seconds per connection) for a broker or store that stopped answering.
  const forced = Promise.withResolvers<void>();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) {
      log.warn("beat: second signal: exiting now, without waiting for the connections to close");
      forced.resolve();
      return;
    }
    log.info("beat: shutting down (signal again to exit at once)");
    starting.abort(
      new DOMException("Stopped before the beat store could be reached", "AbortError"),
    );
    beat.stop();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const run = async () => {
    try {
      try {
        // As Celery's beat, which keeps running while the broker is down: the store is waited for.
        await retryOnStartup(() => beat.start(), {
          failFast: values["fail-fast"] as boolean | undefined,
          signal: starting.signal,
        });
      } catch (err) {
        if (!starting.signal.aborted) throw err;
        return;
      }
      await beat.finished;
    } finally {
      await app.close();
    }
  };
  try {
    await Promise.race([run(), forced.promise]);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  return 0;
}

function scheduleFromFlags(values: Values): ScheduleSpec {
  const given = (["every", "cron", "at"] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      "schedule add needs exactly one of --every 10s, --cron '0 3 * * *', --at ISO",
    );
  }
  if (values.every !== undefined) {
    const v = String(values.every);
    return /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  if (values.cron !== undefined) return String(values.cron);
  try {
    return at(String(values.at));
  } catch (err) {
    if (!(err instanceof BeatEntryError)) throw err;
    throw new UsageError(
      `--at needs a time with an offset, e.g. --at 2027-01-01T09:00:00Z, got "${values.at}"`,
      { cause: err },
    );
  }
}

/**
 * `worker.ts schedule list|add|remove`: change the schedule kept in the store.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * await runSchedule(app, ["add", "tick"], { task: "tasks.tick", every: "10s" });
 * ```
 *
 * @param app the app
 * @param positionals `[action, name?]`
 * @param values parsed flags
 * @returns the exit code
 */
export async function runSchedule(
  app: Celery,
  positionals: string[],
  values: Values,
): Promise<number> {
  configureBeatStore(app, values);
  const [action = "list", name] = positionals;
  if (action === "list") return await list(app).finally(() => app.close());
  if (!name) throw new UsageError(`schedule ${action} needs an entry name`);
  const periodic = new PeriodicTasks(app);
  try {
    if (action === "add") {
      if (typeof values.task !== "string") throw new UsageError("schedule add needs --task NAME");
      const options: BeatEntry["options"] = {};
      if (values.queue !== undefined) options.queue = String(values.queue);
      if (values.expires !== undefined) {
        options.expires = positiveNumber(String(values.expires), "--expires");
      }
      if (values.priority !== undefined) {
        options.priority = wholeNumber(String(values.priority), "--priority");
      }
      const entry: BeatEntry = {
        task: values.task,
        schedule: scheduleFromFlags(values),
        args: jsonFlag(values.args, "--args") as unknown[] | undefined,
        kwargs: jsonFlag(values.kwargs, "--kwargs") as Record<string, unknown> | undefined,
        options,
      };
      await periodic.add(name, entry).catch((err) => {
        // The entry is made of this command's flags: what is wrong with it is a usage error.
        throw err instanceof BeatEntryError ? new UsageError(err.message, { cause: err }) : err;
      });
      const unknown = unregisteredTask(
        app,
        values.task,
        values.app as string | undefined,
        "stored",
      );
      const lease = await (await periodic.store()).lease();
      console.log(
        lease
          ? `Stored entry "${name}"; the running beat leader picks it up`
          : `Stored entry "${name}"; no beat leads now: the next beat to start sends it`,
      );
      if (unknown) console.error(unknown);
      const alone = privateBroker(app.config.beatStore ?? "");
      if (alone) console.error(`warning: no beat in another process can read this entry: ${alone}`);
      return 0;
    }
    if (action === "remove") {
      const removed = await periodic.remove(name);
      const configured = Object.hasOwn(app.config.beatSchedule, name);
      console.log(
        !removed
          ? `No entry "${name}"`
          : configured
          ? `Removed entry "${name}" (the app's beatSchedule has it: hidden until ` +
            `schedule add gives it again)`
          : `Removed entry "${name}"`,
      );
      return removed ? EXIT_CODES.ok : EXIT_CODES.failed;
    }
    throw new UsageError(
      `Unknown schedule action "${action}": use ${SCHEDULE_ACTIONS.join(", ")}`,
    );
  } finally {
    await periodic.close();
    await app.close();
  }
}
