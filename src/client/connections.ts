/**
 * An app's broker and result backend connections: each opened on first
 * use (a failed open is tried again on the next use), both closed together.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Broker } from "../broker/port.ts";
import type { ResolvedConfig } from "./config.ts";
import { NoResultBackendError } from "./errors.ts";
import { openBackend, openBroker } from "./transports.ts";

/**
 * The broker and backend of an app, opened from its configuration as it
 * is when they are first used.
 *
 * @example
 * ```ts ignore
 * const connections = new Connections(() => app.config, app.oid);
 * const broker = await connections.broker();
 * await connections.close();
 * ```
 */
export class Connections {
  readonly #config: () => ResolvedConfig;
  readonly #replyQueue: string;
  #broker: Promise<Broker> | null = null;
  #backend: Promise<ResultBackend> | null = null;

  /**
   * @param config the app's configuration, read when a connection opens
   * @param replyQueue the app's reply-queue id (the rpc:// backend's queue)
   */
  constructor(config: () => ResolvedConfig, replyQueue: string) {
    this.#config = config;
    this.#replyQueue = replyQueue;
  }

  /** Whether the broker or the backend was opened (or is opening). */
  get opened(): boolean {
    return this.#broker !== null || this.#backend !== null;
  }

  /**
   * The broker, opened on first use.
   *
   * @returns the broker
   */
  broker(): Promise<Broker> {
    const config = this.#config();
    this.#broker ??= openBroker(config.broker, {
      visibilityTimeout: config.visibilityTimeout,
      outageRetryLimit: config.outageRetryLimit,
    }).catch((err) => {
      this.#broker = null;
      throw err;
    });
    return this.#broker;
  }

  /**
   * The result backend, opened on first use.
   *
   * @returns the backend
   * @throws {NoResultBackendError} when none is configured
   */
  resultBackend(): Promise<ResultBackend> {
    const config = this.#config();
    const url = config.backend;
    if (url === null) return Promise.reject(new NoResultBackendError());
    this.#backend ??= openBackend(url, {
      resultExpires: config.resultExpires,
      outageRetryLimit: config.outageRetryLimit,
      replyQueue: this.#replyQueue,
      brokerUrl: config.broker,
    }).catch((err) => {
      this.#backend = null;
      throw err;
    });
    return this.#backend;
  }

  /** Close the broker and the backend, if they were opened. */
  async close(): Promise<void> {
    const broker = this.#broker;
    const backend = this.#backend;
    this.#broker = null;
    this.#backend = null;
    await Promise.all([
      broker?.then((b) => b.close(), () => {}),
      backend?.then((b) => b.close(), () => {}),
    ]);
  }
}
