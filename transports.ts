/**
 * The transports behind the broker and result-backend ports: Redis
 * (kombu-compatible), RabbitMQ (AMQP 0-9-1, with Celery's rpc:// result
 * backend) and the embedded Deno KV store. Most programs never
 * import this: `new Celery({ broker, backend })` opens the right one from its
 * URL, loading it only when it connects.
 *
 * @example
 * ```ts
 * import { openRedisBroker } from "@celeriac/celeriac/transports";
 * const broker = await openRedisBroker("redis://127.0.0.1:6379/0");
 * console.log(await broker.restoreVisible(), "orphaned messages restored");
 * await broker.close();
 * ```
 *
 * @module
 */

// src/broker/redis.ts
export { openRedisBroker, RedisBroker, type RedisBrokerOptions } from "./src/broker/redis.ts";
// src/broker/redis_keys.ts
export {
  PARKED_KEY,
  PRIORITY_SEP,
  PRIORITY_STEPS,
  priorityList,
  RATE_LIMIT_KEY_PREFIX,
  REVOKED_KEY,
} from "./src/broker/redis_keys.ts";
// src/broker/redis_restore.ts
export { RESTORE_LOCK_MS } from "./src/broker/redis_restore.ts";
// src/broker/redis_url.ts
export {
  isClusterUrl,
  isSentinelUrl,
  parseRedisUrl,
  type RedisUrlOptions,
} from "./src/broker/redis_url.ts";
// src/broker/redis_cluster.ts
export {
  openRedisClusterBroker,
  queueTag,
  RedisClusterBroker,
} from "./src/broker/redis_cluster.ts";
// src/backend/redis.ts
export {
  openRedisBackend,
  RedisBackend,
  type RedisBackendOptions,
  TASK_META_PREFIX,
} from "./src/backend/redis.ts";
// src/broker/amqp.ts
export { AmqpBroker, openAmqpBroker } from "./src/broker/amqp.ts";
// src/broker/amqp_options.ts
export type { AmqpBrokerOptions } from "./src/broker/amqp_options.ts";
// src/broker/amqp_state.ts
export type { BackoffOptions } from "./src/broker/amqp_state.ts";
// src/broker/amqp_url.ts
export { type AmqpUrlOptions, parseAmqpUrl } from "./src/broker/amqp_url.ts";
// src/broker/url_options.ts
export {
  AMQP_READ_OPTIONS,
  type AmqpUrlOption,
  REDIS_READ_OPTIONS,
  type RedisUrlOption,
  type UrlQuery,
} from "./src/broker/url_options.ts";
// src/broker/amqp_topology.ts
export type { QueueType } from "./src/broker/amqp_topology.ts";
// src/backend/rpc.ts
export { openRpcBackend, RpcBackend, type RpcBackendOptions } from "./src/backend/rpc.ts";
// src/backend/rpc_url.ts
export { rpcAmqpUrl } from "./src/backend/rpc_url.ts";
// src/broker/kv.ts
export { KvBroker, type KvBrokerOptions, openKvBroker } from "./src/broker/kv.ts";
// src/broker/kv_message.ts
export { KV_MAX_MESSAGE_BYTES } from "./src/broker/kv_message.ts";
// src/broker/kv_store.ts
export { type KvUrl, parseKvUrl } from "./src/broker/kv_store.ts";
// src/backend/kv.ts
export { KvBackend, type KvBackendOptions, openKvBackend } from "./src/backend/kv.ts";
// src/backend/kv_meta_store.ts
export { KV_MAX_RESULT_BYTES, KV_VALUE_BYTES } from "./src/backend/kv_meta_store.ts";
// src/backend/redis_chord.ts
export { GROUP_META_PREFIX, RedisChords } from "./src/backend/redis_chord.ts";
// src/backend/kv_chord.ts
export { KvChords } from "./src/backend/kv_chord.ts";
// src/broker/redis_schedule.ts
export { openRedisScheduleStore, RedisScheduleStore } from "./src/broker/redis_schedule.ts";
// src/broker/kv_schedule.ts
export { KvScheduleStore, openKvScheduleStore } from "./src/broker/kv_schedule.ts";
