/**
 * The Celeriac dashboard: a live web UI, a JSON API and Prometheus
 * `/metrics` for every worker on the broker, Celeriac and Python alike, fed
 * by Celery events and inspect replies. The command line starts it with
 * `deno run ... worker.ts dashboard --app ./tasks.ts`; this module embeds it.
 *
 * @example Embedding the dashboard in a program
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Dashboard } from "@celeriac/celeriac/dashboard";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0" });
 * const dashboard = new Dashboard({ app, port: 5555 });
 * console.log((await dashboard.start()).url);
 * ```
 *
 * @module
 */

export { Dashboard, type DashboardOptions } from "./src/dashboard/server.ts";
export type {
  DashboardEvent,
  EventCore,
  EventSourceFn,
  InspectCommand,
  Inspector,
} from "./src/dashboard/feed.ts";
export { type Changes, ViewModel, type ViewModelOptions } from "./src/dashboard/view_model.ts";
export {
  EVENT_STATE,
  READY_STATES,
  type TaskFacts,
  type TaskQuery,
  type TaskRecord,
  type TaskState,
  type TimelineStep,
} from "./src/dashboard/task_record.ts";
export { TaskTable, type TaskTableOptions } from "./src/dashboard/task_table.ts";
export { type WorkerRecord, WorkerTable } from "./src/dashboard/worker_table.ts";
export { type SeriesPoint, Throughput } from "./src/dashboard/throughput.ts";
export { Metrics, RUNTIME_BUCKETS } from "./src/dashboard/metrics.ts";
export {
  type AuthOptions,
  authRequired,
  checkAuth,
  checkListenAuth,
  isLoopback,
  safeEqual,
  validateAuth,
} from "./src/dashboard/auth.ts";
export {
  type DashboardOption,
  type DashboardOptionNames,
  DashboardOptionsError,
  errorResponse,
  HttpError,
} from "./src/dashboard/errors.ts";
export { parsePyLiteral, PyLiteralError } from "./src/dashboard/py_literal.ts";
