/**
 * One RabbitMQ connection that comes back by itself, driven by the state
 * machine of `amqp_state.ts`: when the TCP connection drops or RabbitMQ
 * restarts, it reconnects with exponential backoff, and every user waits
 * for the next {@link AmqpSession} instead of failing. Each session carries
 * an `AbortSignal` that fires when that connection ends, so channels,
 * consumers and deliveries know they died with it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import amqp from "amqplib";
import process from "node:process";
import type { ChannelModel } from "amqplib";
import { BrokerConnectionError, maskPassword } from "./errors.ts";
import { type AmqpUrlOptions, parseAmqpUrl } from "./amqp_url.ts";
import { describeAmqpFailure } from "./amqp_failures.ts";
import { keepNumbersUntilWritten } from "./amqp_channel_numbers.ts";
import { readFramesInPlace } from "./amqp_frame_reader.ts";
import { decodeHeadersOurselves } from "./amqp_header_frames.ts";
import { wrongServer } from "./server_probe.ts";
import {
  backoffDelay,
  type BackoffOptions,
  closedByServer,
  type ConnectionEvent,
  type ConnectionState,
  nextState,
  refusalDelay,
  refusalsAfter,
} from "./amqp_state.ts";
import { CLOSE_WAIT_MS, closeWait } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * One live connection to RabbitMQ.
 *
 * @example
 * ```ts ignore
 * const session = await connection.session();
 * const channel = await session.model.createChannel();
 * session.lost.addEventListener("abort", () => console.log("connection", session.epoch, "gone"));
 * ```
 */
export interface AmqpSession {
  /** amqplib's connection. */
  readonly model: ChannelModel;
  /** 1 for the first connection, 2 after the first reconnect, ... */
  readonly epoch: number;
  /** Aborts when this connection ends (dropped or closed). */
  readonly lost: AbortSignal;
}

/**
 * Options of {@link AmqpConnection}.
 *
 * @example
 * ```ts
 * const options: AmqpConnectionOptions = { name: "celeriac-broker", backoff: { maxMs: 5000 } };
 * ```
 */
export interface AmqpConnectionOptions {
  /** Connection name shown by `rabbitmqctl list_connections client_properties`. */
  name?: string;
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /** Milliseconds one connection attempt may take; default 10 s (URL `connect_timeout` wins). */
  connectTimeoutMs?: number;
}

/**
 * Options of {@link AmqpConnection.session}.
 *
 * @example
 * ```ts ignore
 * const session = await connection.session({ timeoutMs: 30_000 });
 * ```
 */
export interface SessionOptions {
  /** Stop waiting: rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds with a {@link BrokerConnectionError}. */
  timeoutMs?: number;
  /**
   * The limit the error names, in milliseconds (default: `timeoutMs`): a wait that is the
   * rest of a longer limit (a publish's `publishTimeout`) names that limit, not what was left.
   */
  limitMs?: number;
}

/**
 * A self-healing RabbitMQ connection.
 *
 * @example
 * ```ts
 * const connection = new AmqpConnection("amqp://guest:guest@127.0.0.1:5672//");
 * await connection.start(); // throws BrokerConnectionError when RabbitMQ is unreachable
 * const { model } = await connection.session();
 * await connection.close();
 * ```
 */
export class AmqpConnection {
  readonly #rawUrl: string;
  readonly #url: AmqpUrlOptions;
  readonly #options: AmqpConnectionOptions;
  #state: ConnectionState = "idle";
  #session: AmqpSession | null = null;
  #lost: AbortController | null = null;
  #epoch = 0;
  #attempt = 0;
  #refusals = 0;
  #openedAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastError: unknown = null;
  readonly #waiters = new Set<() => void>();

  /**
   * Prepare a connection; {@link AmqpConnection.start} opens it.
   *
   * @param rawUrl `amqp://` or `amqps://` URL
   * @param options name, backoff and timeout
   */
  constructor(rawUrl: string, options: AmqpConnectionOptions = {}) {
    this.#rawUrl = rawUrl;
    this.#url = parseAmqpUrl(rawUrl);
    this.#options = options;
  }

  /** The parsed URL. */
  get url(): AmqpUrlOptions {
    return this.#url;
  }

  /** The URL with its password masked, for messages. */
  get safeUrl(): string {
    return maskPassword(this.#rawUrl);
  }

  /** The live connection, or `null` while there is none. */
  get current(): AmqpSession | null {
    return this.#session;
  }

  /** Where the state machine is. */
  get state(): ConnectionState {
    return this.#state;
  }

  #on(event: ConnectionEvent): boolean {
    const before = this.#state;
    this.#state = nextState(before, event);
    if (this.#state !== before) {
      log.debug("RabbitMQ connection {url}: {from} -> {to} ({event})", {
        url: this.safeUrl,
        from: before,
        to: this.#state,
        event,
      });
    }
    return this.#state !== before;
  }

  /**
   * Open the first connection.
   *
   * @param signal destroys the socket of this first attempt (not of reconnects)
   * @throws {BrokerConnectionError} when RabbitMQ cannot be reached (no retry)
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (!this.#on("start")) return;
    try {
      await this.#open(signal);
    } catch (err) {
      this.#on("close");
      const known = describeAmqpFailure(err, this.#url);
      const u = this.#url;
      // Nothing said what answered (Redis at this port never sends a greeting): ask it.
      const why = known || signal?.aborted
        ? err
        : await wrongServer(err, "amqp", u.hostname, u.port, u.tls);
      throw new BrokerConnectionError(this.#rawUrl, why, known);
    }
  }

  async #open(signal?: AbortSignal): Promise<void> {
    const u = this.#url;
    // The socket's signal destroys it at once: amqplib hands its socket options
    // to Node's net.connect, which takes one (amqplib's types do not list it).
    // net.connect keeps it for the socket's whole life, so the socket gets its
    // own, aborted by `signal` only while connecting: the caller's signal may
    // abort later (the CLI aborts its start-up signal once connected) and must
    // not cut the connection then.
    const connecting = new AbortController();
    const onAbort = () => connecting.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const socketOptions = {
      timeout: u.connectTimeout ?? this.#options.connectTimeoutMs ?? 10_000,
      noDelay: true,
      signal: connecting.signal,
      clientProperties: { connection_name: this.#options.name ?? "celeriac" },
    };
    let model: ChannelModel;
    try {
      model = await amqp.connect({
        protocol: u.tls ? "amqps" : "amqp",
        hostname: u.hostname,
        port: u.port,
        username: u.username,
        password: u.password,
        vhost: encodeURIComponent(u.vhost),
        heartbeat: u.heartbeat,
      }, socketOptions);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (this.#state !== "connecting") {
      await closeModel(model);
      return;
    }
    decodeHeadersOurselves(model);
    readFramesInPlace(model);
    coalesceWrites(model);
    keepNumbersUntilWritten(model);
    const lost = new AbortController();
    const session: AmqpSession = { model, epoch: ++this.#epoch, lost: lost.signal };
    model.on("error", (err: Error) => this.#lastError = err);
    model.on("close", (err?: Error) => this.#dropped(session, err ?? this.#lastError));
    model.on("blocked", (reason: string) => {
      log.warn("RabbitMQ blocked the connection ({reason}): publishing waits", { reason });
    });
    model.on("unblocked", () => log.info("RabbitMQ unblocked the connection"));
    this.#session = session;
    this.#lost = lost;
    this.#attempt = 0;
    this.#openedAt = Date.now();
    this.#on("connected");
    if (session.epoch > 1) log.info("Reconnected to {url}", { url: this.safeUrl });
    for (const wake of this.#waiters) wake();
  }

  #dropped(session: AmqpSession, err: unknown): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#lost?.abort(new BrokerConnectionError(this.#rawUrl, err));
    this.#lost = null;
    if (!this.#on("dropped")) return;
    const lived = Date.now() - this.#openedAt;
    this.#refusals = refusalsAfter(this.#refusals, lived);
    const message = err instanceof Error ? err.message : "closed by the server";
    const delay = this.#scheduleRetry(refusalDelay(this.#refusals));
    if (this.#refusals < 2) {
      log.warn("Lost the connection to {url}: {error}; reconnecting", {
        url: this.safeUrl,
        error: message,
      });
    } else if (!closedByServer(err)) {
      log.warn(
        "Lost the connection to {url} again {lived} ms after it opened ({n} times in a row): {error}. " +
          "RabbitMQ did not close it: the network, or a proxy or load balancer that ends new connections; " +
          "next attempt in {delay} ms",
        { url: this.safeUrl, lived, n: this.#refusals, error: message, delay },
      );
    } else {
      log.error(
        "RabbitMQ {url} closed the connection again {lived} ms after it opened ({n} times in a row): {error}. " +
          "This is a refusal that will repeat until the cause is fixed (a queue type that refuses a method, " +
          "a vhost limit, ...); next attempt in {delay} ms",
        { url: this.safeUrl, lived, n: this.#refusals, error: message, delay },
      );
    }
  }

  #scheduleRetry(fixed = 0): number {
    const delay = fixed || backoffDelay(++this.#attempt, this.#options.backoff);
    this.#timer = setTimeout(() => this.#retry(), delay);
    return delay;
  }

  async #retry(): Promise<void> {
    if (!this.#on("retry")) return;
    try {
      await this.#open();
    } catch (err) {
      if (!this.#on("failed")) return;
      // Retries come every 250 ms: warn at the third, then every 40th (about 10 s).
      const level = this.#attempt === 3 || this.#attempt % 40 === 0 ? "warn" : "debug";
      log[level]("Cannot reconnect to {url} (attempt {attempt}): {error}", {
        url: this.safeUrl,
        attempt: this.#attempt,
        error: describeAmqpFailure(err, this.#url)?.reason ?? (err as Error).message,
      });
      this.#scheduleRetry();
    }
  }

  /**
   * The live connection, waiting for a reconnect when there is none.
   *
   * @param options abort signal and time limit
   * @returns the session
   * @throws {BrokerConnectionError} after the time limit, or once closed
   */
  async session(options: SessionOptions = {}): Promise<AmqpSession> {
    const { signal, timeoutMs } = options;
    const limitMs = options.limitMs ?? timeoutMs ?? 0;
    const closedError = () =>
      new BrokerConnectionError(this.#rawUrl, new Error("the connection was closed"));
    while (true) {
      if (this.#session) return this.#session;
      if (this.#state === "closed") throw closedError();
      signal?.throwIfAborted();
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      const onAbort = () => reject(signal!.reason);
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        reject(
          new BrokerConnectionError(
            this.#rawUrl,
            new Error(
              `no connection to RabbitMQ for ${limitMs / 1000} s (last error: ${
                (this.#lastError as Error | null)?.message ?? "none"
              })`,
            ),
          ),
        );
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(resolve);
      try {
        await promise;
      } finally {
        this.#waiters.delete(resolve);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
    }
  }

  /** Close for good; users waiting for a session get a {@link BrokerConnectionError}. */
  async close(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    this.#on("close");
    clearTimeout(this.#timer);
    this.#lost?.abort(new BrokerConnectionError(this.#rawUrl, new Error("closed")));
    this.#lost = null;
    for (const wake of this.#waiters) wake();
    if (session) await closeModel(session.model);
  }
}

/**
 * Close an amqplib connection: its Close-Ok (and what the server still
 * sends before it) is waited for `CLOSE_WAIT_MS` at most, then the socket is
 * destroyed, so that a server that stopped answering over a connection that
 * stays up does not hold the close. RabbitMQ puts what the connection left
 * unacknowledged back in its queues once it sees the connection gone.
 */
async function closeModel(model: ChannelModel): Promise<void> {
  if (await closeWait(model.close())) return;
  log.debug("RabbitMQ did not answer the connection's close within {ms} ms: dropping it", {
    ms: CLOSE_WAIT_MS,
  });
  (model as unknown as WithSocket).connection?.stream?.destroy();
}

/** The part of amqplib's connection that `coalesceWrites` uses: its socket. */
interface WithSocket {
  connection?: {
    stream?: {
      write: (...args: unknown[]) => boolean;
      cork(): void;
      uncork(): void;
      destroy(): void;
    };
  };
}

/**
 * Send the frames amqplib writes in one turn of the event loop with one
 * system call. amqplib writes every frame (each publish, each ack) to the
 * socket on its own, and with Nagle's algorithm off (needed for
 * request/response latency) each write is a `send()`: under load the
 * worker spent a third of its time in them. Corking the socket at the
 * first write of a turn and uncorking it once the turn's code has run
 * (`process.nextTick`) hands the lot to the socket as one vectored write,
 * without delaying anything to a later turn.
 */
function coalesceWrites(model: ChannelModel): void {
  const socket = (model as unknown as WithSocket).connection?.stream;
  if (!socket || typeof socket.cork !== "function") return;
  const write = socket.write;
  let corked = false;
  socket.write = function (...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write.apply(socket, args);
  };
}

/**
 * Whether an amqplib error closed only a channel (a refused declaration,
 * a missing queue or exchange), with the AMQP reply code given.
 *
 * @example
 * ```ts ignore
 * try {
 *   await channel.checkQueue("nope");
 * } catch (err) {
 *   if (isChannelError(err, 404)) console.log("no such queue");
 * }
 * ```
 *
 * @param err the error
 * @param code AMQP reply code (404 NOT_FOUND, 406 PRECONDITION_FAILED)
 * @returns true when the error carries that code
 */
export function isChannelError(err: unknown, code: number): boolean {
  return err instanceof Error && (err as Error & { code?: unknown }).code === code;
}
