/**
 * The socket side of a `RespConnection` (resp_connection.ts): its options, its error, the
 * TCP/TLS connect limited by `connectTimeoutMs`, the reconnect loop with
 * doubling delays, and the watchdog that drops a connection whose replies
 * stopped.
 *
 * @module
 */

import { sleep } from "./sleep.ts";
import { backoffDelay } from "./amqp_state.ts";
import { RedisReplyError, type RespValue } from "./resp_reader.ts";
import { wrongServer } from "./server_probe.ts";
import { reconnectFailed } from "./resp_outages.ts";
import { MAXCLIENTS_REFUSAL } from "./redis_failures.ts";

/**
 * The connection to Redis failed, dropped or was closed.
 *
 * @example
 * ```ts
 * import { RedisConnectionError } from "./resp_dial.ts";
 * new RedisConnectionError("connection closed").code; // "REDIS_CONNECTION"
 * ```
 */
export class RedisConnectionError extends Error {
  /** Stable code for programmatic checks. */
  readonly code = "REDIS_CONNECTION";

  /**
   * @param message what happened
   * @param cause the underlying error
   */
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "RedisConnectionError";
  }
}

/**
 * Options of `RespConnection` (resp_connection.ts).
 *
 * @example
 * ```ts
 * import type { RespConnectionOptions } from "./resp_dial.ts";
 * const o: RespConnectionOptions = { host: "127.0.0.1", port: 6379, db: 3, name: "celeriac-events" };
 * ```
 */
export interface RespConnectionOptions {
  /** Host name. */
  host: string;
  /** Port. */
  port: number;
  /** TLS (`rediss://`). Default false. */
  tls?: boolean;
  /** Certificates of the authorities to trust with TLS, PEM. Default: the system's. */
  caCerts?: string[];
  /** ACL user; with `password`, `AUTH user password`. Default none. */
  username?: string;
  /** Password (`AUTH`). Default none. */
  password?: string;
  /** Database (`SELECT`). Default 0. */
  db?: number;
  /** Connection name (`CLIENT SETNAME`), shown by `CLIENT LIST`. Default none. */
  name?: string;
  /**
   * Speak RESP3 (`HELLO 3` after `AUTH` on each connect): a connection that
   * subscribes can still run commands (a subscriber reads a key in the same
   * write as its `SUBSCRIBE`), and its messages come as pushes. Redis ≥ 6;
   * a server that refuses `HELLO` is spoken to in RESP2 (see
   * `RespConnection.resp3`). Default false (RESP2).
   */
  resp3?: boolean;
  /** Patterns to PSUBSCRIBE to on each connect. Default none. */
  patterns?: string[];
  /**
   * The channels to SUBSCRIBE to on each connect, asked anew each time (a
   * subscriber whose channels come and go). Default none.
   */
  channels?: () => Iterable<string>;
  /** Called each time the connection is ready: after the first connect and after each reconnect. Default none. */
  onReady?: () => void;
  /**
   * Called with each pub/sub message (`["pmessage", pattern, channel,
   * payload]` or `["message", channel, payload]`), its bulk strings views of
   * the read buffer valid until it returns. Default none.
   */
  onPush?: (push: RespValue[]) => void;
  /**
   * The read buffer's first size, bytes; each read takes up to what is free
   * in it. Default 64 KiB.
   */
  readBufferBytes?: number;
  /**
   * Commands sent while it waits to reconnect wait for the next attempt (and
   * fail if that fails) instead of failing at once. Default false.
   */
  waitForReconnect?: boolean;
  /**
   * With `waitForReconnect`: a command keeps waiting across the attempts
   * that start within this many ms of it being sent (a server restarting
   * for a moment), and fails once one of them fails after that. Default 0:
   * the next attempt only.
   */
  reconnectWaitMs?: number;
  /**
   * A connection with commands waiting that gets no reply for this long, ms,
   * is taken for dead (a peer gone without closing it): it is dropped (its
   * commands fail) and reconnected. Default none: wait as long as it takes.
   */
  replyTimeoutMs?: number;
  /**
   * With `replyTimeoutMs`: PING every this many ms while connected, so that
   * a connection that only reads (a subscriber: no command waits, so the
   * reply timeout never runs) notices a peer gone without closing it (a
   * server host lost, a load balancer or NAT forgetting an idle flow).
   * Default none.
   */
  pingEveryMs?: number;
  /** Reconnect after a drop. Default true. */
  reconnect?: boolean;
  /** First reconnect delay, ms, doubled per failed attempt. Default 50. */
  minDelayMs?: number;
  /** Longest reconnect delay, ms. Default 2000. */
  maxDelayMs?: number;
  /**
   * How long a new connection may take, ms: the TCP (and TLS) connect, and
   * then the server's answer to the greeting (AUTH, SELECT, ... or a PING),
   * each, before it is given up. Default 10000.
   */
  connectTimeoutMs?: number;
  /** Closes the connection when it aborts. Default none. */
  signal?: AbortSignal;
  /** The URL, for log lines (its password is masked). Default `host:port`. */
  label?: string;
  /** What the connection is for, in log lines ("Redis {role} connection"). Default `events`. */
  role?: string;
}

/**
 * Open the socket of a connection: TCP, or TLS with its handshake, within
 * `connectTimeoutMs` (default 10000); TCP without Nagle's delay.
 *
 * @example
 * ```ts
 * import { dial } from "./resp_dial.ts";
 * const conn = await dial({ host: "127.0.0.1", port: 6379 }, "127.0.0.1:6379");
 * conn.close();
 * ```
 *
 * @param o the connection's options
 * @param label the server, for the error
 * @returns the open socket
 * @throws {RedisConnectionError} when it cannot be opened in time
 */
export async function dial(o: RespConnectionOptions, label: string): Promise<Deno.Conn> {
  let conn: Deno.Conn;
  try {
    conn = await within(o.connectTimeoutMs ?? 10_000, async () => {
      if (!o.tls) return await Deno.connect({ hostname: o.host, port: o.port });
      const tls = await Deno.connectTls({ hostname: o.host, port: o.port, caCerts: o.caCerts });
      await tls.handshake().catch((err) => {
        tls.close();
        throw err;
      });
      return tls;
    });
  } catch (err) {
    throw new RedisConnectionError(`cannot reach ${label}: ${(err as Error).message}`, err);
  }
  if (!o.tls) (conn as Deno.TcpConn).setNoDelay(true);
  return conn;
}

/**
 * A greeting that failed without a Redis reply (the connection reset or
 * closed; not one that timed out): when the server at the address speaks AMQP (a `redis://` URL
 * with RabbitMQ's port), a {@link RedisConnectionError} caused by a
 * `WrongServerError` that says so (server_probe.ts), else `err` itself.
 *
 * @example
 * ```ts
 * import { notRedis } from "./resp_dial.ts";
 * const err = new Error("Connection closed");
 * throw await notRedis(err, { host: "127.0.0.1", port: 5672 });
 * ```
 *
 * @param err why the greeting failed
 * @param o the connection's options (its address)
 * @returns the error to throw
 */
export async function notRedis(err: unknown, o: RespConnectionOptions): Promise<unknown> {
  // A Redis reply, or a server that accepted and never answered (RabbitMQ answers at once).
  if (err instanceof RedisReplyError || /did not answer within/.test((err as Error)?.message)) {
    return err;
  }
  const why = await wrongServer(err, "redis", o.host, o.port, o.tls ?? false);
  return why === err ? err : new RedisConnectionError((why as Error).message, why);
}

/**
 * The error a connect whose greeting failed rejects with: Redis at
 * maxclients (it answers a new connection with an error and closes it) is a
 * refused connection, as when nothing listens; a connect closed meanwhile
 * (an aborted open, `app.close()`) keeps its reason unprobed (a probe would
 * open one connection more); anything else goes through {@link notRedis}.
 *
 * @example
 * ```ts ignore
 * throw await greetingError(failed.reason, "redis://127.0.0.1:6379/0", false, options);
 * ```
 *
 * @param reason why the greeting failed
 * @param label the server, for the message
 * @param closed whether the connection was closed meanwhile
 * @param o the connection's options
 * @returns the error to reject the connect with
 */
export async function greetingError(
  reason: unknown,
  label: string,
  closed: boolean,
  o: RespConnectionOptions,
): Promise<unknown> {
  if (reason instanceof RedisReplyError && MAXCLIENTS_REFUSAL.test(reason.message)) {
    return new RedisConnectionError(`${label} refused the connection: ${reason.message}`, reason);
  }
  return closed ? reason : await notRedis(reason, o);
}

/**
 * What {@link reconnect} does to the connection it reconnects.
 *
 * @example
 * ```ts ignore
 * const steps: ReconnectSteps = { waiting: () => true, stillWaiting: () => true, connect };
 * ```
 */
export interface ReconnectSteps {
  /**
   * Before each attempt's delay, with a promise that settles when the
   * attempt is over (commands may wait for it); false stops (closed).
   */
  waiting(attempt: Promise<void>): boolean;
  /** After the delay: whether the connection still waits for this attempt. */
  stillWaiting(): boolean;
  /** The attempt: resolves once connected. */
  connect(): Promise<void>;
}

/**
 * Reconnect after a drop: attempts after delays doubling from `minDelayMs`
 * (default 50) to `maxDelayMs` (default 2000), until one connects, the
 * connection stops waiting or `signal` aborts.
 *
 * @example
 * ```ts ignore
 * import { reconnect } from "./resp_dial.ts";
 * await reconnect(options, "127.0.0.1:6379", this, closing.signal, steps);
 * ```
 *
 * @param o the connection's options
 * @param label the server, for log lines
 * @param conn the connection (its identity, for resp_outages.ts)
 * @param signal ends the delays (closing)
 * @param steps what each attempt does to the connection
 */
export async function reconnect(
  o: RespConnectionOptions,
  label: string,
  conn: object,
  signal: AbortSignal,
  steps: ReconnectSteps,
): Promise<void> {
  const min = o.minDelayMs ?? 50;
  const max = o.maxDelayMs ?? 2000;
  const role = o.role ?? "events";
  for (let attempt = 0;; attempt++) {
    const tried = Promise.withResolvers<void>();
    if (!steps.waiting(tried.promise)) return;
    try {
      await sleep(backoffDelay(attempt + 1, { initialMs: min, maxMs: max, jitter: 0 }), signal);
      if (!steps.stillWaiting()) return;
      await steps.connect();
      return;
    } catch (err) {
      reconnectFailed(label, conn, role, (err as Error).message);
    } finally {
      tried.resolve();
    }
  }
}

/**
 * Watch a connection's replies: when commands have waited `ms` without any
 * reply, call `silent` (which drops the connection), between `ms` and 1.25
 * `ms` after the first of them was sent. Checks every quarter of `ms` (at
 * least 10 ms) on an unref'd timer, which the caller clears.
 * A check that runs late by more than one period means this process's own
 * event loop was busy (encoding a huge message, say) and could not read
 * the replies that may be waiting in the socket: the wait starts again
 * rather than blaming the server for it.
 *
 * @example
 * ```ts ignore
 * import { startWatchdog } from "./resp_dial.ts";
 * const timer = startWatchdog(30_000, () => live, () => ({ idle, replies }), drop);
 * clearInterval(timer);
 * ```
 *
 * @param ms how long commands may wait without a reply
 * @param current whether the watched socket is still the connection's
 * @param progress whether nothing waits, and how many replies came so far
 * @param silent called when the replies stopped
 * @returns the timer
 */
export function startWatchdog(
  ms: number,
  current: () => boolean,
  progress: () => { idle: boolean; replies: number },
  silent: () => void,
): ReturnType<typeof setInterval> {
  const period = Math.max(10, ms / 4);
  let seen = progress().replies;
  let since = Date.now();
  let tick = since;
  let wasIdle = true;
  const timer = setInterval(() => {
    const at = Date.now();
    const stalled = at - tick > 2 * period;
    tick = at;
    if (!current()) return;
    const now = progress();
    // The wait counts from the first check that finds commands waiting, not from the last that
    // found none (up to a period earlier): no command is given up before it waited `ms`.
    if (now.idle || wasIdle || now.replies !== seen || stalled) {
      seen = now.replies;
      since = at;
    } else if (at - since >= ms) {
      silent();
    }
    wasIdle = now.idle;
  }, period);
  Deno.unrefTimer(timer);
  return timer;
}

/**
 * Run `open` (a connect), failing after `ms` milliseconds: a connection
 * that opens later is closed. Deno's connect to a host that drops packets
 * would otherwise wait for the kernel's SYN retries (~2 min on Linux).
 */
function within(ms: number, open: () => Promise<Deno.Conn>): Promise<Deno.Conn> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`no connection within ${ms} ms`));
    }, ms);
    open().then((conn) => {
      clearTimeout(timer);
      if (late) conn.close();
      else resolve(conn);
    }, (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
