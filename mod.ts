/**
 * Celeriac: a Deno-native distributed task queue that speaks the Celery
 * protocol. Define tasks in TypeScript, send them with `.delay()`, await typed
 * results — run by Celeriac workers (a pool of Web Workers with scoped Deno
 * permissions) or by Python Celery workers, over Redis, RabbitMQ or an
 * embedded Deno KV store.
 *
 * - {@link Celery}: the app — define tasks, send them, read results.
 * - {@link Task}: a defined task — `delay()`, `applyAsync()`.
 * - {@link AsyncResult}: a sent task's result — `get()`, `state()`, `ready()`,
 *   `revoke()` (all methods, awaited: `await r.state()` for Celery's `r.state`).
 * - {@link TaskError}, {@link TimeoutError}, {@link Retry}: what calls and
 *   tasks throw.
 * - Workers: `@celeriac/celeriac/worker`. Transports:
 *   `@celeriac/celeriac/transports`. Wire protocol and ports:
 *   `@celeriac/celeriac/protocol`.
 *
 * @example Define tasks (tasks.ts)
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 *
 * export const app = new Celery({
 *   broker: "redis://127.0.0.1:6379/0", // or amqp://guest:guest@127.0.0.1:5672//, or kv://
 *   backend: "redis://127.0.0.1:6379/0",
 * });
 * export const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * ```
 *
 * @example Run a worker
 * ```sh
 * deno run -A jsr:@celeriac/celeriac/worker --app ./tasks.ts
 * ```
 *
 * @example Call a task and wait for its result
 * ```ts
 * import { Celery, TaskError } from "@celeriac/celeriac";
 *
 * // In a program, import app and add from tasks.ts above.
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 *
 * const result = await add.delay(2, 3);
 * try {
 *   const sum: number = await result.get({ timeout: 10_000 });
 *   console.log(sum); // 5
 * } catch (e) {
 *   if (e instanceof TaskError) console.error(e.excType, e.message);
 * }
 * await app.close();
 * ```
 *
 * @module
 */

// The app
export { Celery } from "./src/client/app.ts";
export { CeleryBase } from "./src/client/app_base.ts";
export { type CeleryOptions, type ResolvedConfig, type UrlSources } from "./src/client/config.ts";
export type { PublishRetryPolicy } from "./src/client/publish_retry.ts";
export type { OpenOptions } from "./src/client/connections.ts";
// Tasks
export { type ArgsSuffix, Task } from "./src/client/task.ts";
export type {
  ApplyOptions,
  BoundTaskHandler,
  DelayManyOptions,
  ErrbackRequest,
  SendManyOptions,
  StateUpdate,
  TaskContext,
  TaskHandler,
  TaskOptions,
} from "./src/client/task_options.ts";
export { MaxRetriesExceededError, Retry, type RetryOptions } from "./src/client/retry.ts";
export { Replaced } from "./src/client/replaced.ts";
export { currentTask, type RunningTask } from "./src/client/current.ts";
export type { PermissionValue, TaskPermissions } from "./src/client/permissions.ts";
// Routing and annotations (Celery's task_routes, task_annotations)
export type { TaskRoute, TaskRouteMap, TaskRouter, TaskRoutes } from "./src/client/routes.ts";
export type {
  TaskAnnotation,
  TaskAnnotationMap,
  TaskAnnotations,
  TaskAnnotator,
} from "./src/client/annotations.ts";
// Signals and task hooks
export {
  type SignalListener,
  type SignalName,
  type SignalPayloads,
  Signals,
  type TaskRunInfo,
} from "./src/client/signals.ts";
// Workflows (canvas): signatures, chain, group, chord
export {
  type AppliedCanvas,
  type CanvasApp,
  CanvasBase,
  type CanvasCall,
  Group,
  type GroupKind,
  type ResultOf,
  Signature,
} from "./src/client/canvas/signature.ts";
export type { SignatureOptions } from "./src/client/canvas/signature_options.ts";
export {
  type CanvasStep,
  chain,
  type ChainEnd,
  type ChainOf,
  chord,
  group,
  type GroupOf,
  type GroupResults,
  type LastOf,
  type MemberResults,
} from "./src/client/canvas/primitives.ts";
// Periodic tasks (beat)
export type {
  AtSchedule,
  BeatEntry,
  BeatEntryOptions,
  CrontabSchedule,
  ScheduleSpec,
} from "./src/client/beat_config.ts";
export { at, crontab, type CrontabField, type CrontabFields } from "./src/beat/crontab.ts";
export { beatEntry } from "./src/beat/entry.ts";
export { Beat, type BeatOptions } from "./src/beat/beat.ts";
export { PeriodicTasks, type ScheduleRow, type TypedBeatEntry } from "./src/beat/periodic_tasks.ts";
export { BeatEntryError, BeatStoreError } from "./src/beat/errors.ts";
// Results
export { AsyncResult } from "./src/client/async_result.ts";
export type { GetOptions } from "./src/client/get_options.ts";
export { GroupResult, type MemberResult } from "./src/client/group_result.ts";
export type { TaskUpdate } from "./src/client/progress.ts";
export type { TaskState } from "./src/protocol/result_meta.ts";
// Remote control
export { Control, type RevokeOptions } from "./src/client/control.ts";
// src/client/replies.ts, src/client/inspect.ts
export type { NodeReply, ReplyOptions } from "./src/client/replies.ts";
export { Inspect, type ScheduledInfo, type TaskInfo } from "./src/client/inspect.ts";
// src/client/events.ts, src/client/event_state.ts
export { type EventHandlers, Events, type ReceiveOptions } from "./src/client/events.ts";
export {
  EventState,
  type EventStateOptions,
  type EventTaskState,
  type TaskView,
  type WorkerView,
} from "./src/client/event_state.ts";
// Errors
export {
  BatchSendError,
  ChordUnsupportedError,
  NoResultBackendError,
  TaskArgumentsError,
  TaskError,
  TimeoutError,
} from "./src/client/errors.ts";
export {
  PermissionDenied,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  type TimeLimitInfo,
  WorkerLostError,
} from "./src/client/worker_errors.ts";
export {
  AdminChannelClosedError,
  BatchPublishError,
  BrokerConnectionError,
  ExchangeNotFoundError,
  ParkedScanBusyError,
  type PublishOutcome,
  RevokedStreamMismatchError,
} from "./src/broker/errors.ts";
export { ResultConnectionLostError } from "./src/backend/rpc_errors.ts";
export { MessageRefusedError, MessageUnconfirmedError } from "./src/broker/message_refused.ts";
export { EncodeError } from "./src/protocol/errors.ts";
// Option types
export type { SerializerName } from "./src/protocol/serializers.ts";
export type { CompressionName } from "./src/protocol/compression_names.ts";
// src/protocol/events.ts (what monitors receive; encoding lives in ./protocol)
export type {
  CeleryEvent,
  EventBase,
  TaskFailedEvent,
  TaskReceivedEvent,
  TaskRejectedEvent,
  TaskRetriedEvent,
  TaskRevokedEvent,
  TaskSentEvent,
  TaskStartedEvent,
  TaskSucceededEvent,
  WorkerEvent,
} from "./src/protocol/events.ts";
// src/client/version.ts
export { CELERIAC_VERSION } from "./src/client/version.ts";
