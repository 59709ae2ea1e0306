/**
 * The building blocks beneath `@celeriac/celeriac`: Celery's wire protocol
 * (task messages, envelopes, result meta, remote-control messages, Python's
 * JSON and repr), the serializers and compressions, and the broker and
 * result-backend ports with the functions that open them from a URL.
 *
 * Applications need none of it: tasks are defined, sent and awaited with
 * `@celeriac/celeriac`, workers run with `@celeriac/celeriac/worker`. This
 * module is for writing a transport, inspecting raw messages, or speaking
 * the Celery protocol without an app. It also holds beat's building blocks:
 * the schedule-store port and the pure schedule arithmetic.
 *
 * @example Encode a task message as a Python client would, and read it back
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * });
 * console.assert(decodeTaskHeaders(message).argsrepr === "(2, 3)");
 * ```
 *
 * @module
 */

// src/client/publisher.ts
export {
  PUBLISHER,
  type Publisher,
  SENT_FROM_TASK,
  type SentFromTask,
} from "./src/client/publisher.ts";
// src/client/async_result.ts
export type { ResultSource } from "./src/client/async_result.ts";
// src/client/errors.ts
export { taskErrorFromMeta } from "./src/client/errors.ts";
// src/client/config.ts
export { DEFAULT_BROKER_URL, resolveConfig, type ResolvedConfig } from "./src/client/config.ts";
// src/client/publish_retry.ts
export {
  DEFAULT_PUBLISH_RETRY_POLICY,
  type PublishRetryPolicy,
  publishRetryPolicyOf,
  resolvePublishRetryPolicy,
} from "./src/client/publish_retry.ts";
// src/client/runtime.ts
export { anonymousNodeName, hostName, processId, readEnv } from "./src/client/runtime.ts";
// src/client/task_options.ts
export type { TaskSender } from "./src/client/task_options.ts";
// src/client/transports.ts
export {
  openBackend,
  type OpenBackendOptions,
  openBroker,
  type OpenBrokerOptions,
  openScheduleStore,
} from "./src/client/transports.ts";
// src/broker/schedule_store.ts
export {
  type BrokenLease,
  type CommitOutcome,
  DEFAULT_BEAT_NAMESPACE,
  type LeaseInfo,
  type ScheduleKeyRole,
  type ScheduleStore,
  ScheduleStoreKeyError,
  type ScheduleStoreOptions,
} from "./src/broker/schedule_store.ts";
// src/beat/schedules.ts (beat's schedule arithmetic, pure)
export {
  compileSchedule,
  parseInterval,
  type RunState,
  type Schedule,
} from "./src/beat/schedules.ts";
// src/beat/crontab.ts
export { cronPattern } from "./src/beat/crontab.ts";
// src/beat/entry.ts
export { compileEntry, type ScheduledEntry } from "./src/beat/entry.ts";
// src/beat/run_state.ts
export { decodeRunOwner, decodeRunState, encodeRunState } from "./src/beat/run_state.ts";
// src/beat/schedule_editor.ts
export { openAppScheduleStore } from "./src/beat/schedule_editor.ts";

// src/broker/port.ts
export { DELIVERY_COUNT_HEADER } from "./src/broker/port.ts";
export type {
  Broker,
  Delivery,
  ParkedMessage,
  Publication,
  PublishManyOptions,
  PublishTarget,
  QueueBinding,
  Rejection,
  RequeueOptions,
  RevokedEntry,
  SubscribeOptions,
  Subscription,
  TakeOptions,
  TokenGrant,
  TokenRequest,
} from "./src/broker/port.ts";
// src/broker/errors.ts
export { BrokerConnectionError, maskPassword } from "./src/broker/errors.ts";
// src/broker/outage.ts
export {
  DEFAULT_OUTAGE_LIMIT,
  type OutageRetryOptions,
  retryWhileDown,
} from "./src/broker/outage.ts";
// src/backend/port.ts
export type { ChordFailure, ChordPart, ResultBackend, StoreEntry } from "./src/backend/port.ts";

// src/protocol/errors.ts
export {
  ContentDisallowedError,
  ControlPatternError,
  EncodeError,
  ProtocolError,
  TaskNameError,
} from "./src/protocol/errors.ts";
// src/protocol/json.ts
export { pyJsonDumps, pyJsonDumpsRecords, pyJsonLoads } from "./src/protocol/json.ts";
// src/protocol/limits.ts
export {
  checkShape,
  MAX_DECOMPRESSED_SIZE,
  MAX_HEADERS_SIZE,
  MAX_NESTING_DEPTH,
  type ShapeLimits,
} from "./src/protocol/limits.ts";
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
export { argsRepr, kwargsRepr, pyRepr, REPR_MAXSIZE, resultRepr } from "./src/protocol/repr.ts";
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
  encodeEnvelopeBytes,
  type Envelope,
} from "./src/protocol/envelope.ts";
// src/protocol/result_meta.ts
export {
  decodeResultMeta,
  encodeResultMeta,
  encodeResultMetaWithJson,
  EXCEPTION_STATES,
  type ExceptionInfo,
  type ExtendedResultFields,
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
  MAX_PATTERN_LENGTH,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
  REVOKE_STORED_ARG,
  revokedIds,
} from "./src/protocol/control.ts";
// src/protocol/clock.ts
export { LamportClock } from "./src/protocol/clock.ts";
// src/protocol/events.ts
export {
  decodeEventMessage,
  encodeEventMessage,
  EVENT_EXCHANGE,
  eventRoutingKey,
  localUtcOffset,
  makeEvent,
  TASK_MULTI,
} from "./src/protocol/events.ts";
// src/protocol/signature.ts
export {
  callbackError,
  chordError,
  type ChordMember,
  decodeChordMember,
  decodeGroupMeta,
  decodeSignature,
  encodeChordMember,
  encodeGroupMeta,
  encodeSignature,
  exceptionRepr,
  type ResultTuple,
  resultTupleFromJson,
  resultTuplesText,
  resultTupleToJson,
  SUBTASK_TYPES,
} from "./src/protocol/signature.ts";
// src/protocol/canvas.ts
export { freezeSignature, planCanvas } from "./src/protocol/canvas.ts";
// src/protocol/canvas_types.ts
export type {
  CanvasPlan,
  CanvasSend,
  ChordSize,
  PlanOptions,
} from "./src/protocol/canvas_types.ts";
// src/protocol/canvas_shape.ts
export { chainSignature, chordSignature, groupSignature } from "./src/protocol/canvas_shape.ts";
// src/protocol/canvas_message.ts
export {
  type CanvasSender,
  canvasTarget,
  encodeCanvasSend,
} from "./src/protocol/canvas_message.ts";
