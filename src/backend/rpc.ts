/**
 * The rpc:// result backend, as Celery 5.2's: results travel as AMQP
 * messages to the reply queue of the client that sent the task (the task
 * message's `reply_to`, the client's oid), on the default exchange, with
 * the task id as `correlation_id` and Celery's 5.2 body
 * `{"task_id", "status", "result", "traceback", "children"}`.
 *
 * Semantics, as in Celery:
 *
 * - There is no store. A client sees only results sent to its own reply
 *   queue, once each; {@link RpcBackend.get} answers from what arrived
 *   there (the latest state per task, a SUCCESS never replaced), after
 *   draining the queue. Another client, or the same one after a restart
 *   (new oid), reads `null` (PENDING).
 * - A ready state handed to a {@link RpcBackend.waitFor} is not kept: the
 *   result handle that waited keeps it (Celery's `AsyncResult` cache), and a
 *   later `get` of its id reads `null`. A `get` takes nothing (Celery 5.2
 *   puts the message back after reading it): a handle reading a state
 *   with `state()` leaves it to the wait of another. States nobody waited
 *   for are kept,
 *   the latest {@link UNCLAIMED_LIMIT} tasks' (Celery buffers as many), so a
 *   long-running client holds no result it was given.
 * - The reply queue is declared as Celery's client declares it
 *   (non-durable, auto-delete, `x-expires` = `result_expires`). Celeriac's
 *   worker also declares it before sending, with the same arguments, so a
 *   result sent before the client started listening waits in the queue.
 * - The reply queue is consumed (no acknowledgements) from the first `get`
 *   or `waitFor` on; a backend that only stores (a worker) never consumes.
 * - {@link RpcBackend.forget} only drops the local copy.
 * - A lost connection deletes the auto-delete reply queue: a result sent
 *   before it is declared again is dropped by RabbitMQ. Every wait under way
 *   is rejected with a `ResultConnectionLostError` when the connection is
 *   lost (Celery raises on the lost connection), and one begun while it was
 *   down when consuming starts again, rather than waiting for good.
 * - A reply queue deleted while consumed (RabbitMQ cancels the consumer)
 *   is declared and consumed again; the waits under way are rejected with
 *   a `ResultConnectionLostError`, as results sent meanwhile were dropped.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { CONSUME_RETRY_DELAY_MS, consumeAcrossReconnects } from "../broker/amqp_consume.ts";
import { AmqpConnection, type AmqpSession } from "../broker/amqp_connection.ts";
import { publishTimeoutMs } from "../broker/amqp_url.ts";
import { replyQueueDeclaration } from "../broker/amqp_topology.ts";
import type { Message } from "../protocol/message.ts";
import { READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import type { ResultBackend, StoreEntry } from "./port.ts";
import { ResultConnectionLostError } from "./rpc_errors.ts";
import { readRpcResult, SYNC_PREFIX, syncMarker } from "./rpc_message.ts";
import { RpcSender } from "./rpc_send.ts";
import { unlessAborted } from "../broker/sleep.ts";
import { checkResultExpires } from "./result_expires.ts";
import { type ResultWaiter, ResultWaiters } from "./result_waiters.ts";
import { storedOnAbort } from "./stored_on_abort.ts";
import { rpcAmqpUrl } from "./rpc_url.ts";
import { withinPublishTimeout } from "./rpc_redeclare.ts";
import type { RpcBackendOptions } from "./rpc_options.ts";

export type { RpcBackendOptions };

const log = getLogger(["celeriac", "backend", "rpc"]);

/** Longest wait for a drain marker to come back. */
const DRAIN_LIMIT_MS = 10_000;

/**
 * How many tasks' states a client keeps that no wait took (Celery's
 * `MESSAGE_BUFFER_MAX`): past it, the oldest kept is dropped.
 *
 * @example
 * ```ts
 * import { UNCLAIMED_LIMIT } from "./rpc.ts";
 * UNCLAIMED_LIMIT; // 8192
 * ```
 */
export const UNCLAIMED_LIMIT = 8192;

/**
 * Celery's rpc:// result backend over RabbitMQ.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { openRpcBackend } from "@celeriac/celeriac/transports";
 * const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:5672//", backend: "rpc://" });
 * const taskId = (await app.sendTask("tasks.add", [2, 3])).id; // its reply goes to app.oid
 * const backend = await openRpcBackend("rpc://", { brokerUrl: "amqp://127.0.0.1//", replyQueue: app.oid });
 * const meta = await backend.waitFor(taskId, AbortSignal.timeout(10_000));
 * await backend.close();
 * ```
 */
export class RpcBackend implements ResultBackend {
  /** Always `rpc`. */
  readonly transport = "rpc";
  /** This client's reply queue. */
  readonly replyQueue: string;
  readonly #conn: AmqpConnection;
  readonly #expires: number;
  readonly #sender: RpcSender;
  /** The latest state per task that no wait took yet, oldest first, at most `UNCLAIMED_LIMIT`. */
  readonly #latest = new Map<string, ResultMeta>();
  readonly #waiters = new ResultWaiters();
  readonly #syncs = new Map<string, () => void>();
  readonly #closing = new AbortController();
  #listening: Promise<void> | null = null;
  #consumer: Promise<void> | null = null;
  /** The reply queue was consumed once: a set-up after it follows a lost connection. */
  #consumed = false;
  /** Ends the sends' wait for a reply queue RabbitMQ deleted to be declared again; null once it is. */
  #redeclared: (() => void) | null = null;
  /** Why setting the reply queue up last failed. */
  #setUpError: Error | undefined;
  readonly #publishTimeoutMs: number;
  /** The connection whose loss ends the waits under way (the one consumed on). */
  #watched: AmqpSession | null = null;
  readonly #ownQueueGiven: boolean;

  /**
   * Use {@link openRpcBackend}.
   *
   * @param url `rpc://` (with `brokerUrl`) or `rpc://user:pass@host:port/vhost`
   * @param options reply queue, expiry, persistence
   */
  constructor(url: string, options: RpcBackendOptions = {}) {
    this.#expires = checkResultExpires(options.resultExpires ?? 86400);
    // x-expires is whole milliseconds (kombu: int(s * 1000)), and RabbitMQ refuses 0.
    if (this.#expires > 0 && Math.trunc(this.#expires * 1000) === 0) {
      throw new RangeError(
        `resultExpires on rpc:// must be 0 (no expiry) or at least 0.001 s (1 ms, RabbitMQ's ` +
          `x-expires is whole milliseconds above 0), got ${this.#expires}`,
      );
    }
    this.#conn = new AmqpConnection(rpcAmqpUrl(url, options.brokerUrl), {
      name: "celeriac-rpc-backend",
      backoff: options.backoff,
    });
    this.replyQueue = options.replyQueue ?? crypto.randomUUID();
    this.#ownQueueGiven = options.replyQueue !== undefined;
    // The URL's ?publish_timeout= first, as the AMQP broker (a bare rpc:// has the broker's query).
    const seconds = this.#conn.url.publishTimeout ?? options.publishTimeout ?? 30;
    this.#publishTimeoutMs = publishTimeoutMs(seconds, `publishTimeout ${seconds}`);
    this.#sender = new RpcSender(this.#conn, {
      expires: this.#expires,
      persistent: options.persistent ?? false,
      publishTimeoutMs: this.#publishTimeoutMs,
      closing: this.#closing.signal,
    });
  }

  /**
   * Connect now.
   *
   * @param signal destroys the socket of a connect under way
   * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
   */
  connect(signal?: AbortSignal): Promise<void> {
    return this.#conn.start(signal);
  }

  /**
   * Send each state to its task's reply queue (`entry.replyTo`); entries
   * without one are not sent, as in Celery.
   */
  store(entries: readonly StoreEntry[]): Promise<void> {
    return this.#sender.store(entries);
  }

  #onMessage(message: Message): void {
    const cid = message.properties.correlation_id;
    if (typeof cid === "string" && cid.startsWith(SYNC_PREFIX)) {
      const done = this.#syncs.get(cid.slice(SYNC_PREFIX.length));
      done?.();
      return;
    }
    const r = readRpcResult(message);
    if (!r) {
      log.warn("Ignored a message in reply queue {queue} that is not a result", {
        queue: this.replyQueue,
      });
      return;
    }
    if (this.#latest.get(r.taskId)?.status === "SUCCESS") return;
    if (!READY_STATES.has(r.meta.status)) {
      this.#keep(r.taskId, r.meta);
      this.#waiters.progress(r.taskId, r.meta);
      return;
    }
    if (!this.#waiters.has(r.taskId)) {
      this.#keep(r.taskId, r.meta);
      return;
    }
    // Handed to its waiters, which keep it: nothing here holds it any longer.
    this.#latest.delete(r.taskId);
    for (const w of this.#waiters.take(r.taskId)) w.resolve(r.meta);
  }

  /** Keep `meta` as the task's latest state, the newest kept; the oldest goes past the limit. */
  #keep(taskId: string, meta: ResultMeta): void {
    this.#latest.delete(taskId);
    this.#latest.set(taskId, meta);
    if (this.#latest.size > UNCLAIMED_LIMIT) {
      this.#latest.delete(this.#latest.keys().next().value!);
    }
  }

  /** The task's kept state; a ready one is handed over (no longer kept). */
  #claim(taskId: string): ResultMeta | undefined {
    const known = this.#latest.get(taskId);
    if (known && READY_STATES.has(known.status)) this.#latest.delete(taskId);
    return known;
  }

  /**
   * How many tasks' states this client keeps for a later `get` or
   * `waitFor`: those that arrived and no wait took (at most
   * {@link UNCLAIMED_LIMIT}).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { RpcBackend } from "@celeriac/celeriac/transports";
   * const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:5672//", backend: "rpc://" });
   * const result = await app.sendTask("tasks.add", [2, 3]);
   * await result.get({ timeout: 10_000 });
   * const backend = await app.resultBackend();
   * if (backend instanceof RpcBackend) backend.kept; // 0: the handle keeps its result, the backend does not
   * ```
   */
  get kept(): number {
    return this.#latest.size;
  }

  /** Start consuming the reply queue (once); resolves when the consumer is set up. */
  #listen(): Promise<void> {
    if (this.#listening) return this.#listening;
    if (!this.#ownQueueGiven) {
      log.warn(
        "The rpc:// backend listens on a reply queue of its own ({queue}); results of tasks " +
          "whose reply_to names another queue (an app's oid) never arrive here: pass replyQueue",
        { queue: this.replyQueue },
      );
    }
    const { ready, done } = consumeAcrossReconnects({
      connection: this.#conn,
      signal: this.#closing.signal,
      setUp: async (session) => {
        await this.#sender.declareReplyQueue(
          session,
          replyQueueDeclaration(this.replyQueue, this.#expires),
        );
        if (this.#consumed) this.#waiters.rejectAll(this.#repliesLost("reconnected"));
        this.#consumed = true;
        this.#redeclared?.();
        this.#redeclared = null;
        this.#watchLoss(session);
        return this.replyQueue;
      },
      onMessage: (m) => this.#onMessage(m),
      onCancel: (queue) => {
        log.warn(
          "RabbitMQ cancelled the consumer of reply queue {queue} (the queue was deleted?): " +
            "declaring it again and consuming; the waits under way end",
          { queue },
        );
        this.#sender.forgetReplyQueue(queue);
        this.#waiters.rejectAll(this.#repliesLost("cancelled"));
        // Set up again at once on the same connection: a wait begun since is not ended, and
        // sends wait for the queue (a result sent to no queue is dropped).
        this.#consumed = false;
        const declared = Promise.withResolvers<void>();
        this.#listening = declared.promise;
        this.#redeclared = declared.resolve;
      },
      onRetry: (err) => {
        this.#setUpError = err;
        log.warn("Consuming reply queue {queue} failed: {error}; trying again", {
          queue: this.replyQueue,
          error: err.message,
        });
      },
      retryDelayMs: CONSUME_RETRY_DELAY_MS,
    });
    this.#listening = ready;
    ready.catch(() => this.#listening = null);
    this.#consumer = done.finally(() => this.#redeclared?.());
    return ready;
  }

  /**
   * {@link #listen}; while a reply queue RabbitMQ deleted is declared again,
   * waited for at most the publish timeout (then a `ResultConnectionLostError`).
   */
  #listenBounded(): Promise<void> {
    const listening = this.#listen();
    if (this.#redeclared === null) return listening;
    return withinPublishTimeout(
      listening,
      this.#publishTimeoutMs,
      () => this.#repliesLost("undeclared", this.#setUpError),
    );
  }

  /** Why the waits under way when the connection was lost end: their replies may be gone. */
  #repliesLost(
    when: "lost" | "reconnected" | "cancelled" | "undeclared",
    cause?: unknown,
  ): ResultConnectionLostError {
    return new ResultConnectionLostError(this.#conn.safeUrl, this.replyQueue, when, cause);
  }

  /** Reject the waits under way as soon as `session` is lost (not when this backend closes). */
  #watchLoss(session: AmqpSession): void {
    if (this.#watched === session) return;
    this.#watched = session;
    session.lost.addEventListener("abort", () => {
      if (this.#closing.signal.aborted) return;
      this.#waiters.rejectAll(this.#repliesLost("lost", session.lost.reason));
    }, { once: true });
  }

  /**
   * Wait until everything already in the reply queue has arrived here: a
   * marker sent to the queue now arrives after it (at most `DRAIN_LIMIT_MS`,
   * in case the marker died with a connection).
   */
  async #drain(): Promise<void> {
    this.#closing.signal.throwIfAborted();
    await this.#listenBounded();
    const id = crypto.randomUUID();
    const { promise: arrived, resolve, reject } = Promise.withResolvers<void>();
    // A close during the marker's publish rejects `arrived` before it is
    // awaited: observed below, not an unhandled rejection.
    arrived.catch(() => {});
    this.#syncs.set(id, resolve);
    const onClose = () => reject(this.#closing.signal.reason);
    this.#closing.signal.addEventListener("abort", onClose, { once: true });
    const timer = setTimeout(resolve, DRAIN_LIMIT_MS);
    try {
      await this.#sender.publish(this.replyQueue, syncMarker(id));
      await arrived;
    } finally {
      clearTimeout(timer);
      this.#syncs.delete(id);
      this.#closing.signal.removeEventListener("abort", onClose);
    }
  }

  /**
   * Declare and consume this client's reply queue (before its first task is sent).
   *
   * @throws {ResultConnectionLostError} when RabbitMQ deleted the reply queue and declaring
   *   it again kept failing for the publish timeout
   */
  async prepare(): Promise<void> {
    await this.#listenBounded();
  }

  /**
   * The latest state that reached this client's reply queue; `null`
   * (PENDING) when none did, or a wait took its ready state. Drains the
   * queue first.
   */
  async get(taskId: string): Promise<ResultMeta | null> {
    await this.#drain();
    return this.#latest.get(taskId) ?? null;
  }

  /**
   * Wait until a ready state (SUCCESS, FAILURE, REVOKED) reaches the reply
   * queue. An abort ends the wait; a ready result that reached the queue by
   * then is still read (the queue drained) and returned while RabbitMQ is
   * connected (while it is not, the abort also ends the wait for it). The
   * ready state returned is no longer kept here (the caller keeps it).
   * Rejects with a `ResultConnectionLostError` (a `BrokerConnectionError`)
   * as soon as the connection is lost during the wait, or when consuming
   * starts again after it was down during the wait: the reply queue is
   * deleted with it, and a reply sent meanwhile is gone.
   */
  waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta> {
    return storedOnAbort(
      taskId,
      signal,
      (s) => this.#wait(taskId, s, onState),
      () =>
        this.#conn.state === "open" && this.#redeclared === null
          ? this.get(taskId).then(() => this.#claim(taskId) ?? null)
          : Promise.resolve(undefined),
      onState,
    );
  }

  async #wait(
    taskId: string,
    signal: AbortSignal | undefined,
    onState: ((meta: ResultMeta) => void) | undefined,
  ): Promise<ResultMeta> {
    signal?.throwIfAborted();
    this.#closing.signal.throwIfAborted();
    const known = this.#claim(taskId);
    if (known && READY_STATES.has(known.status)) return known;
    if (known) onState?.(known);
    const { promise, resolve, reject } = Promise.withResolvers<ResultMeta>();
    // An abort while the reply queue is being declared rejects `promise`
    // before it is awaited: observed below, not an unhandled rejection.
    promise.catch(() => {});
    const waiter: ResultWaiter = { resolve, reject, onState };
    this.#waiters.add(taskId, waiter);
    const onAbort = (reason: unknown) => {
      this.#waiters.drop(taskId, waiter);
      reject(reason);
    };
    const abortListener = () => onAbort(signal!.reason);
    const closeListener = () =>
      onAbort(new DOMException("The result backend was closed while waiting", "AbortError"));
    signal?.addEventListener("abort", abortListener, { once: true });
    this.#closing.signal.addEventListener("abort", closeListener, { once: true });
    try {
      // The caller's abort ends the wait for a reply queue being declared again, too.
      await Promise.race([this.#listen(), promise]);
      return await promise;
    } catch (err) {
      onAbort(err);
      throw err;
    } finally {
      signal?.removeEventListener("abort", abortListener);
      this.#closing.signal.removeEventListener("abort", closeListener);
    }
  }

  /**
   * Drop the kept ready state of `taskId`: a caller read it with `get` and
   * keeps it (a non-ready one stays, for a later wait).
   */
  release(taskId: string): void {
    this.#claim(taskId);
  }

  /** Forget the local copy of a result (there is nothing else to delete). */
  async forget(taskId: string): Promise<void> {
    await this.#drain();
    this.#latest.delete(taskId);
  }

  /** Close the connection; pending waiters are rejected. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    await this.#consumer;
    await this.#conn.close();
  }
}

/**
 * Open an rpc:// result backend and check that RabbitMQ answers.
 *
 * @example
 * ```ts
 * import { openRpcBackend } from "@celeriac/celeriac/transports";
 * const backend = await openRpcBackend("rpc://", { brokerUrl: "amqp://guest:guest@127.0.0.1//" });
 * await backend.close();
 * ```
 *
 * @param url `rpc://` or `rpc://user:pass@host:port/vhost`
 * @param options reply queue, broker URL, expiry
 * @returns the connected backend
 * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
 * @throws {TypeError} when no RabbitMQ server is named, or `publishTimeout` is not 0.001 to
 *   2147483.647 s
 * @throws {RangeError} when `resultExpires` is negative, NaN, infinite or under 1 ms
 */
export async function openRpcBackend(
  url: string,
  options: RpcBackendOptions = {},
): Promise<RpcBackend> {
  options.signal?.throwIfAborted();
  const backend = new RpcBackend(url, options);
  await unlessAborted(backend.connect(options.signal), options.signal, () => backend.close());
  return backend;
}
