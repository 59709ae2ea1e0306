// deno-lint-ignore-file no-console
/**
 * Periodic tasks: a schedule in the app, sent by beat, run by a worker.
 *
 *   deno run -A worker.ts worker -B --app ./examples/periodic.ts   # worker with beat inside
 *   deno run -A worker.ts beat --app ./examples/periodic.ts        # or beat on its own (replicas OK)
 *   deno run -A worker.ts beat --app ./examples/periodic.ts --list # the schedule table
 *   deno run -A worker.ts schedule add hello --task periodic.hello --every 10s \
 *     --args '["from the CLI"]' --app ./examples/periodic.ts       # change it while beat runs
 *
 * Broker from CELERY_BROKER_URL (default: the embedded Deno KV store);
 * crontab entries follow CELERY_TIMEZONE (default Europe/Berlin here).
 */

import { beatEntry, Celery, crontab } from "../mod.ts";

export const app = new Celery({
  timezone: Deno.env.get("CELERY_TIMEZONE") ?? "Europe/Berlin",
});

/** Says hello; the beat entry below calls it every 2 seconds. */
export const hello = app.task("periodic.hello", (who: string) => {
  console.log(`hello, ${who}`);
  return who;
});

/** A nightly clean-up: keeps `days` days. */
export const cleanup = app.task("periodic.cleanup", (days: number) => ({ kept: days }));

app.configure({
  beatSchedule: {
    // Typed: `args` must match hello's parameters.
    "hello-every-2s": beatEntry(hello, "2s", { args: ["beat"] }),
    // 03:00 in the app's time zone, on weekdays; expires if not run within an hour.
    "nightly-cleanup": beatEntry(cleanup, crontab({ minute: 0, hour: 3, dayOfWeek: "mon-fri" }), {
      args: [30],
      options: { expires: 3600 },
    }),
    // A task served by a Python worker, by name, on its own queue.
    "python-report": {
      task: "reports.weekly",
      schedule: "0 8 * * mon",
      kwargs: { format: "pdf" },
      options: { queue: "python" },
    },
  },
});
