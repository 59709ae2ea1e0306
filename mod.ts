/**
 * Celeriac: a Deno-native task queue that speaks the Celery protocol.
 *
 * Define tasks, call them with `.delay()` / `.applyAsync()`, and get typed
 * results — served by Celeriac workers or by Python Celery workers, over
 * Redis, RabbitMQ (AMQP 0-9-1) or an embedded Deno KV store.
 *
 * @example
 * ```ts ignore
 * import { Celery } from "@celeriac/celeriac";
 *
 * export const app = new Celery({
 *   broker: "redis://127.0.0.1:6379/0",
 *   backend: "redis://127.0.0.1:6379/0",
 * });
 * export const add = app.task("tasks.add", (a: number, b: number) => a + b);
 *
 * if (import.meta.main) {
 *   const result = await add.delay(2, 3);
 *   console.log(await result.get({ timeout: 10_000 })); // 5
 *   await app.close();
 * }
 * ```
 *
 * @module
 */

// src/client/app.ts
export { Celery, PUBLISHER, type Publisher } from "./src/client/app.ts";
// src/client/task.ts
export {
  type ApplyOptions,
  type BoundTaskHandler,
  Task,
  type TaskContext,
  type TaskHandler,
  type TaskOptions,
  type TaskSender,
} from "./src/client/task.ts";
// src/client/retry.ts
export { MaxRetriesExceededError, Retry, type RetryOptions } from "./src/client/retry.ts";
// src/client/async_result.ts
export {
  AsyncResult,
  type GetOptions,
  type ResultSource,
  taskErrorFromMeta,
} from "./src/client/async_result.ts";
// src/client/control.ts
export { Control, type RevokeOptions } from "./src/client/control.ts";
// src/client/errors.ts
export { NoResultBackendError, TaskError, TimeoutError } from "./src/client/errors.ts";
// src/client/worker_errors.ts
export {
  PermissionDenied,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  type TimeLimitInfo,
  WorkerLostError,
} from "./src/client/worker_errors.ts";
// src/client/permissions.ts
export type { PermissionValue, TaskPermissions } from "./src/client/permissions.ts";
// src/client/config.ts
export {
  type CeleryOptions,
  DEFAULT_BROKER_URL,
  resolveConfig,
  type ResolvedConfig,
} from "./src/client/config.ts";
// src/client/current.ts
export { currentTask, type RunningTask } from "./src/client/current.ts";
// src/client/runtime.ts
export { anonymousNodeName, hostName, readEnv } from "./src/client/runtime.ts";
// src/client/transports.ts
export {
  openBackend,
  type OpenBackendOptions,
  openBroker,
  type OpenBrokerOptions,
} from "./src/client/transports.ts";

// src/broker/port.ts
export type {
  Broker,
  Delivery,
  ParkedMessage,
  PublishTarget,
  Rejection,
  RevokedEntry,
  SubscribeOptions,
  TakeOptions,
  TokenGrant,
  TokenRequest,
} from "./src/broker/port.ts";
// src/broker/errors.ts
export { BrokerConnectionError, maskPassword } from "./src/broker/errors.ts";
// src/backend/port.ts
export type { ResultBackend, StoreEntry } from "./src/backend/port.ts";

// src/protocol/errors.ts
export { ContentDisallowedError, EncodeError, ProtocolError } from "./src/protocol/errors.ts";
// src/protocol/json.ts
export { pyJsonDumps, pyJsonLoads } from "./src/protocol/json.ts";
// src/protocol/time.ts
export { parsePyDate, pyIsoFormat } from "./src/protocol/time.ts";
// src/protocol/serializers.ts
export {
  CONTENT_TYPES,
  deserialize,
  serialize,
  type Serialized,
  type SerializerName,
} from "./src/protocol/serializers.ts";
// src/protocol/compression_names.ts
export { compressionMimeType, type CompressionName } from "./src/protocol/compression_names.ts";
// src/protocol/codecs.ts
export {
  type CodecNeeds,
  codecsFor,
  loadCodecs,
  loadedCompression,
  loadedMsgpack,
} from "./src/protocol/codecs.ts";
// src/protocol/repr.ts
export { argsRepr, kwargsRepr, pyRepr, REPR_MAXSIZE } from "./src/protocol/repr.ts";
// src/protocol/message.ts
export type {
  Embed,
  Message,
  MessageProperties,
  SignatureDict,
  TaskBody,
} from "./src/protocol/message.ts";
// src/protocol/task_message.ts
export { encodeTaskMessage, type TaskMessageInput } from "./src/protocol/task_message.ts";
// src/protocol/retry_message.ts
export { encodeRetryMessage, type RetryMessageInput } from "./src/protocol/retry_message.ts";
// src/protocol/rate.ts
export { parseRate } from "./src/protocol/rate.ts";
// src/protocol/task_request.ts
export {
  type BodyParts,
  decodeTaskBody,
  decodeTaskHeaders,
  type TaskRequest,
} from "./src/protocol/task_request.ts";
// src/protocol/envelope.ts
export {
  decodeEnvelope,
  type DeliveryInfo,
  encodeEnvelope,
  type Envelope,
} from "./src/protocol/envelope.ts";
// src/protocol/result_meta.ts
export {
  decodeResultMeta,
  encodeResultMeta,
  encodeResultMetaWithJson,
  EXCEPTION_STATES,
  type ExceptionInfo,
  READY_STATES,
  type ResultMeta,
  type ResultMetaInput,
  type TaskState,
} from "./src/protocol/result_meta.ts";
// src/protocol/exceptions.ts
export {
  exceptionInfo,
  JS_EXC_MODULE,
  type PythonExceptionFields,
  tracebackText,
} from "./src/protocol/exceptions.ts";
// src/protocol/control.ts
export {
  addressedTo,
  type ControlRequest,
  decodeControlRequest,
  encodeControlReply,
  encodeControlRequest,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
  revokedIds,
} from "./src/protocol/control.ts";
