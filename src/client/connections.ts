/**
 * An app's broker and result backend connections: each opened on first
 * use (a failed open is tried again on the next use), both closed together.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Broker } from "../broker/port.ts";
import type { ResolvedConfig, UrlSources } from "./config.ts";
import { NoResultBackendError } from "./errors.ts";
import { withUrlSource } from "../broker/errors.ts";
import { unlessAborted } from "../broker/sleep.ts";
import { openBackend, openBroker } from "./transports.ts";

/**
 * Options of {@link Connections.broker} and {@link Connections.resultBackend}.
 *
 * @example
 * ```ts
 * import { Celery, type OpenOptions } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:", backend: null });
 * const options: OpenOptions = { signal: AbortSignal.timeout(5_000) };
 * const broker = await app.broker(options);
 * await app.close();
 * ```
 */
export interface OpenOptions {
  /**
   * Stops waiting: the promise rejects with the signal's reason. When this
   * call started the open, the open is aborted too and what it opened is
   * closed; one already under way (started by another caller) goes on. A
   * caller that joined an open whose starter aborted it opens anew. A
   * signal that already aborted rejects at once: nothing is opened or joined.
   */
  signal?: AbortSignal;
}

/** An open under way or done, and the signal of the call that started it. */
interface Opening<T> {
  promise: Promise<T>;
  signal: AbortSignal | undefined;
}

/**
 * Wait for an open another call started, until `options.signal` aborts.
 * When the starter's signal aborted that open, this caller did not ask for
 * it: `again` opens anew for it.
 */
async function join<T>(
  opening: Opening<T>,
  options: OpenOptions,
  again: () => Promise<T>,
): Promise<T> {
  try {
    return await unlessAborted(opening.promise, options.signal);
  } catch (err) {
    const starter = opening.signal;
    if (!starter?.aborted || err !== starter.reason || options.signal?.aborted) throw err;
    return await again();
  }
}

/**
 * The broker and backend of an app, opened from its configuration as it
 * is when they are first used.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const connections = new Connections(() => app.config, app.oid);
 * const broker = await connections.broker();
 * await connections.close();
 * ```
 */
export class Connections {
  readonly #config: () => ResolvedConfig;
  readonly #replyQueue: string;
  readonly #sources: (() => UrlSources) | undefined;
  #broker: Opening<Broker> | null = null;
  #backend: Opening<ResultBackend> | null = null;
  /** The backend once open (until closed). */
  #openedBackend: ResultBackend | undefined;
  /** Aborted by {@link Connections.close}: ends the opens and waits under way. */
  #closing = new AbortController();

  /**
   * @param config the app's configuration, read when a connection opens
   * @param replyQueue the app's reply-queue id (the rpc:// backend's queue)
   * @param sources where the URLs came from, named by a connection error
   *   (default: none said, the transport's error names the URL alone)
   */
  constructor(config: () => ResolvedConfig, replyQueue: string, sources?: () => UrlSources) {
    this.#config = config;
    this.#replyQueue = replyQueue;
    this.#sources = sources;
  }

  /**
   * Aborts when the app closes (with an AbortError saying so); a new one
   * after each close. A wait on the app (an open, a remote-control call)
   * ends on it.
   */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** Whether the broker or the backend was opened (or is opening). */
  get opened(): boolean {
    return this.#broker !== null || this.#backend !== null;
  }

  /**
   * The broker, opened on first use.
   *
   * @param options abort signal
   * @returns the broker
   */
  broker(options: OpenOptions = {}): Promise<Broker> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.#broker) return join(this.#broker, options, () => this.broker(options));
    const config = this.#config();
    const opening = openBroker(config.broker, {
      visibilityTimeout: config.visibilityTimeout,
      outageRetryLimit: config.outageRetryLimit,
      signal: this.#untilClosed(options.signal),
    }).catch((err) => {
      if (this.#broker?.promise === opening) this.#broker = null;
      const sources = this.#sources?.();
      throw withUrlSource(err, sources?.broker, sources?.brokerUnread);
    });
    this.#broker = { promise: opening, signal: options.signal };
    return opening;
  }

  /**
   * The result backend, opened on first use.
   *
   * @param options abort signal
   * @returns the backend
   * @throws {NoResultBackendError} when none is configured (also when the
   *   signal already aborted: the configuration error is reported first)
   */
  resultBackend(options: OpenOptions = {}): Promise<ResultBackend> {
    const config = this.#config();
    const url = config.backend;
    // Before the signal: a missing backend is a configuration error, the same on every call
    // and saying what to change; an aborted signal would hide it behind a timing.
    if (url === null) return Promise.reject(new NoResultBackendError());
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.#backend) return join(this.#backend, options, () => this.resultBackend(options));
    const opening = openBackend(url, {
      resultExpires: config.resultExpires,
      outageRetryLimit: config.outageRetryLimit,
      replyQueue: this.#replyQueue,
      brokerUrl: config.broker,
      signal: this.#untilClosed(options.signal),
    }).then((backend) => {
      if (this.#backend?.promise === opening) this.#openedBackend = backend;
      return backend;
    }, (err) => {
      if (this.#backend?.promise === opening) this.#backend = null;
      throw withUrlSource(err, this.#sources?.().backend);
    });
    this.#backend = { promise: opening, signal: options.signal };
    return opening;
  }

  /** The result backend when it is open already (else undefined: nothing opens it). */
  get openedBackend(): ResultBackend | undefined {
    return this.#openedBackend;
  }

  /** The signal an open runs under: the caller's, and the app's closing. */
  #untilClosed(signal: AbortSignal | undefined): AbortSignal {
    const closing = this.#closing.signal;
    return signal ? AbortSignal.any([signal, closing]) : closing;
  }

  /**
   * Close the broker and the backend, if they were opened; an open under
   * way is aborted (its callers get an AbortError), as is a wait on
   * {@link Connections.closing}.
   */
  async close(): Promise<void> {
    this.#closing.abort(
      new DOMException("The app was closed (app.close()) while waiting", "AbortError"),
    );
    this.#closing = new AbortController();
    const broker = this.#broker?.promise;
    const backend = this.#backend?.promise;
    this.#broker = null;
    this.#backend = null;
    this.#openedBackend = undefined;
    await Promise.all([
      broker?.then((b) => b.close(), () => {}),
      backend?.then((b) => b.close(), () => {}),
    ]);
  }
}
