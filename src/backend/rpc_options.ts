/**
 * Options of the rpc:// result backend.
 *
 * @module
 */

import type { BackoffOptions } from "../broker/amqp_state.ts";

/**
 * Options of `openRpcBackend`.
 *
 * @example The backend of a client whose tasks carry `reply_to: app.oid`
 * ```ts
 * import { openRpcBackend, type RpcBackendOptions } from "@celeriac/celeriac/transports";
 * const options: RpcBackendOptions = {
 *   replyQueue: crypto.randomUUID(), // the app's oid
 *   brokerUrl: "amqp://guest:guest@127.0.0.1:5672//",
 * };
 * const connect = () => openRpcBackend("rpc://", options);
 * ```
 */
export interface RpcBackendOptions {
  /** This client's reply queue (its oid, the `reply_to` of its tasks). Default: a new UUID. */
  replyQueue?: string;
  /** The AMQP broker to use when the rpc URL names no server (Celery uses the broker's). */
  brokerUrl?: string;
  /**
   * Seconds an unused reply queue lives (Celery `result_expires`), as
   * `x-expires` in whole milliseconds (truncated, at least 1); 0: forever.
   * Default 86400.
   */
  resultExpires?: number;
  /** Send results as persistent messages (Celery `result_persistent`). Default false. */
  persistent?: boolean;
  /**
   * Seconds `store()` waits for a lost connection, and a send for a reply
   * queue RabbitMQ deleted to be declared again, when the URL has no
   * `?publish_timeout=` (a bare `rpc://` takes the broker URL's). Default 30.
   */
  publishTimeout?: number;
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /**
   * Aborts opening: what was opened is closed and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
}
