/**
 * The worker's per-task Redis commands on a single server through a
 * {@link RespConnection} instead of ioredis: the take script and the
 * acknowledgement transaction of the broker (redis_take.ts, redis.ts), its
 * publishes' LPUSHes (redis_publish.ts), the result store script and the
 * result reads of the backend (../backend/redis.ts); the connections of its
 * own that a blocking wait or a subscriber needs are opened with the same
 * settings ({@link RespScripts.connection}). Scripts go as `EVALSHA`, and
 * as `EVAL` (which loads them) when the server answers `NOSCRIPT`, as ioredis
 * sends them (resp_eval.ts); failures become the errors the ioredis path
 * throws: a connection that cannot be reached, drops or is refused is a
 * {@link BrokerConnectionError}, other error replies pass through. Sentinel
 * and Cluster URLs keep ioredis (see `isSingleServer` in redis_url.ts).
 *
 * @module
 */

import { BrokerConnectionError } from "./errors.ts";
import {
  describeRedisFailure,
  isClusterNodeReply,
  MAXCLIENTS_REFUSAL,
  refusedForReplicas,
} from "./redis_failures.ts";
import {
  commandTimeoutOf,
  connectTimeoutOf,
  type RedisUrlOptions,
  replyTimeoutOf,
} from "./redis_url.ts";

export { replyTimeoutOf };
import {
  RedisConnectionError,
  type ReplyDecoder,
  RespConnection,
  type RespConnectionOptions,
} from "./resp_connection.ts";
import { RedisReplyError, type RespValue } from "./resp_reader.ts";
import { RespScript, runScript, scriptCommand } from "./resp_eval.ts";
import { bulkText } from "./resp_strings.ts";

export { RespScript, runScript };

/**
 * The settings of a {@link RespConnection} to the server of a single-server
 * Redis URL.
 *
 * @example
 * ```ts
 * import { respOptions } from "./resp_scripts.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://:secret@127.0.0.1:6379/3";
 * respOptions(parseRedisUrl(url), url).db; // 3
 * ```
 *
 * @param url the parsed URL
 * @param rawUrl the URL text, for log lines (its password is masked there)
 * @returns host, port, TLS, credentials, database, label and connect timeout
 */
export function respOptions(url: RedisUrlOptions, rawUrl: string): RespConnectionOptions {
  return {
    host: url.host,
    port: url.port,
    tls: url.tls,
    username: url.username,
    password: url.password,
    db: url.db,
    label: rawUrl,
    connectTimeoutMs: connectTimeoutOf(url, rawUrl),
  };
}

/**
 * The settings of a connection that sends commands ({@link RespScripts},
 * `RespClient`): the server's ({@link respOptions}); after a drop it
 * reconnects with back-off up to `maxDelayMs`, and a command sent while it
 * reconnects waits for the next attempt (with `reconnectWaitMs`, for the
 * attempts of that long); commands left without a reply for
 * `replyTimeoutMs` drop it.
 *
 * @example
 * ```ts
 * import { commandSettings } from "./resp_scripts.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0?socket_timeout=5";
 * commandSettings(parseRedisUrl(url), url).replyTimeoutMs; // 5000
 * ```
 *
 * @param url the parsed URL
 * @param rawUrl the URL text, for errors and log lines
 * @param options `maxDelayMs` (default 500, as the ioredis connections'),
 *   `reconnectWaitMs` (default: the next attempt only), `replyTimeoutMs`
 *   (default the URL's `?socket_timeout=`, else 30 s)
 * @returns the settings, without a connection name or role
 */
export function commandSettings(
  url: RedisUrlOptions,
  rawUrl: string,
  options: { maxDelayMs?: number; reconnectWaitMs?: number; replyTimeoutMs?: number } = {},
): RespConnectionOptions {
  const settings: RespConnectionOptions = {
    ...respOptions(url, rawUrl),
    maxDelayMs: options.maxDelayMs ?? 500,
    waitForReconnect: true,
    replyTimeoutMs: options.replyTimeoutMs ?? commandTimeoutOf(url, rawUrl),
  };
  if (options.reconnectWaitMs !== undefined) settings.reconnectWaitMs = options.reconnectWaitMs;
  return settings;
}

/**
 * Commands framed as one transaction: `MULTI`, the commands, `EXEC` (whose
 * reply, the last, holds theirs). Sent together (`RespConnection.commands`
 * or `commandsSettled`), no other command of the connection comes between.
 *
 * @example
 * ```ts
 * import { inTransaction } from "./resp_scripts.ts";
 * inTransaction([["INCR", "a"], ["GET", "b"]]); // [["MULTI"], ["INCR", "a"], ["GET", "b"], ["EXEC"]]
 * ```
 *
 * @param commands each a command name and its arguments
 * @returns the framed commands
 */
export function inTransaction<C extends readonly (string | Uint8Array)[]>(
  commands: readonly C[],
): (C | readonly string[])[] {
  return [["MULTI"], ...commands, ["EXEC"]];
}

/**
 * The error to throw for a failed command on a {@link RespConnection}: a
 * {@link BrokerConnectionError} when the server cannot be reached, dropped
 * the connection, is still loading its data (`LOADING`), or refused the
 * connection (wrong password, none given, a database that does not exist:
 * with what to change) or is a Redis Cluster node named by a `redis://` URL
 * (a `MOVED` redirect: use `redis+cluster://`), else the error itself.
 *
 * @example
 * ```ts
 * import { respFailure } from "./resp_scripts.ts";
 * import { RedisConnectionError } from "./resp_connection.ts";
 * const err = respFailure(new RedisConnectionError("connection lost"), "redis://h:6379/0");
 * (err as Error).name; // "BrokerConnectionError"
 * ```
 *
 * @param err what the command failed with
 * @param rawUrl the server's URL, for the error
 * @returns the error to throw
 */
export function respFailure(err: unknown, rawUrl: string): unknown {
  if (err instanceof RedisConnectionError) {
    // Refused at maxclients: say what to change, not to check that the server runs.
    const full = MAXCLIENTS_REFUSAL.test(err.message);
    return new BrokerConnectionError(rawUrl, err, full ? describeRedisFailure(err, rawUrl) : {});
  }
  // A server loading its data after a restart refuses commands for a while: as if still down
  // (ioredis waits for the load before it sends anything).
  if (err instanceof RedisReplyError && err.code === "LOADING") {
    return new BrokerConnectionError(rawUrl, err);
  }
  // A master short of in-sync replicas (min-replicas-to-write) refuses writes until they catch up.
  if (refusedForReplicas(err)) {
    return new BrokerConnectionError(rawUrl, err, describeRedisFailure(err, rawUrl));
  }
  if (
    err instanceof Error &&
    (/^(WRONGPASS|NOAUTH|ERR DB index)/.test(err.message) || isClusterNodeReply(err, rawUrl))
  ) {
    return new BrokerConnectionError(rawUrl, err, describeRedisFailure(err, rawUrl));
  }
  return err;
}

/**
 * Options of {@link RespScripts}.
 *
 * @example
 * ```ts
 * import type { RespScriptsOptions } from "./resp_scripts.ts";
 * const o: RespScriptsOptions = { name: "celeriac-consume", role: "consume" };
 * ```
 */
export interface RespScriptsOptions {
  /** Connection name (`CLIENT SETNAME`). Default none. */
  name?: string;
  /** What the connection is for, in log lines. Default `commands`. */
  role?: string;
  /** Longest reconnect delay after a drop, ms. Default 500 (as the ioredis connections'). */
  maxDelayMs?: number;
  /**
   * Commands waiting this long without any reply, ms, drop the connection
   * (a server gone without closing it; ioredis' sockets have TCP keep-alive
   * after 30 s for this). Time this process's own event loop was blocked
   * does not count. Default the URL's `?socket_timeout=` (seconds), else 30000.
   */
  replyTimeoutMs?: number;
}

/**
 * One connection (opened on its first command, reconnected after a drop)
 * that runs scripts and transactions, with failures translated by
 * {@link respFailure}. While it reconnects, a command waits for the next
 * attempt (at most 500 ms away by default) and fails if that fails; commands
 * left without a reply for 30 s (by default) drop the connection. A command whose reply a drop lost fails: the caller
 * decides whether it may be sent again (the take repeats itself by its
 * take record, acknowledgements and result stores are idempotent).
 *
 * @example
 * ```ts
 * import { RespScript, RespScripts } from "./resp_scripts.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0";
 * const redis = new RespScripts(parseRedisUrl(url), url, { name: "celeriac-consume" });
 * const one = await redis.evalScript(new RespScript("return ARGV[1]"), [], ["1"]);
 * await redis.close();
 * ```
 */
export class RespScripts {
  readonly #conn: RespConnection;
  readonly #rawUrl: string;
  readonly #settings: RespConnectionOptions;

  /**
   * @param url the parsed URL (a single server)
   * @param rawUrl the URL text, for errors and log lines
   * @param options connection name, log role, reconnect delay
   */
  constructor(url: RedisUrlOptions, rawUrl: string, options: RespScriptsOptions = {}) {
    this.#rawUrl = rawUrl;
    this.#settings = commandSettings(url, rawUrl, {
      maxDelayMs: options.maxDelayMs,
      replyTimeoutMs: options.replyTimeoutMs,
    });
    this.#conn = new RespConnection({
      ...this.#settings,
      name: options.name,
      role: options.role ?? "commands",
    });
  }

  /**
   * A new connection to the same server with the same reconnect and reply
   * timeout settings, for what must not share this one: a blocking command,
   * a subscription. Its failures are `RedisConnectionError`s and
   * `RedisReplyError`s ({@link respFailure} translates them); the caller
   * closes it.
   *
   * @example
   * ```ts ignore
   * const blocking = scripts.connection({ name: "celeriac-watch", role: "wait" });
   * await blocking.command(["BLMOVE", "celery", "claim", "RIGHT", "LEFT", "1"]);
   * await blocking.close(0);
   * ```
   *
   * @param options its name and role, subscriptions, callbacks (see
   *   {@link RespConnectionOptions}); they override the shared settings
   * @returns the connection (it connects on its first command)
   */
  connection(options: Partial<RespConnectionOptions>): RespConnection {
    return new RespConnection({ ...this.#settings, ...options });
  }

  /** Whether the connection is up: a command sent now is written at once, not after a connect. */
  get ready(): boolean {
    return this.#conn.state === "ready";
  }

  /**
   * Connect now (otherwise the first command connects).
   *
   * @throws {BrokerConnectionError} when Redis cannot be reached or refuses the connection
   */
  async connect(): Promise<void> {
    try {
      await this.#conn.connect();
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
  }

  /**
   * Run a script: `EVALSHA`, or `EVAL` when the server does not have it.
   *
   * @param script the script
   * @param keys its KEYS
   * @param args its ARGV
   * @param decode turns the reply into the result, reading bulk strings from
   *   the read buffer (default: the reply with bulk strings copied)
   * @returns the script's reply, decoded
   * @throws {BrokerConnectionError} when Redis cannot be reached or the connection drops first
   * @throws {RedisReplyError} for an error reply (the script failed)
   */
  async evalScript<T = RespValue>(
    script: RespScript,
    keys: readonly string[],
    args: readonly string[],
    decode?: ReplyDecoder<T>,
  ): Promise<T> {
    try {
      const command = scriptCommand(keys, args);
      return await runScript(script, command, (c) => this.#send(c, decode));
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
  }

  /**
   * {@link RespScripts.evalScript} for a script that replies with an array:
   * `decode` gets that array as one view of its RESP bytes (see
   * `RespConnection.command` with `whole`); another reply rejects with a `TypeError`.
   *
   * @example
   * ```ts ignore
   * const elements = await redis.evalScriptWhole(TAKE, keys, args, respStrings);
   * ```
   *
   * @param script the script
   * @param keys its KEYS
   * @param args its ARGV
   * @param decode turns the reply's bytes into the result
   * @returns the decoded reply
   * @throws {BrokerConnectionError} when Redis cannot be reached or the connection drops first
   * @throws {RedisReplyError} for an error reply (the script failed)
   * @throws {TypeError} when the reply is not an array
   */
  async evalScriptWhole<T>(
    script: RespScript,
    keys: readonly string[],
    args: readonly string[],
    decode: ReplyDecoder<T>,
  ): Promise<T> {
    try {
      const command = scriptCommand(keys, args);
      return await runScript(script, command, (c) => this.#conn.command(c, decode, true));
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
  }

  /**
   * Run commands as one transaction: `MULTI`, the commands, `EXEC`, framed
   * together so that no other command of this connection comes between them.
   *
   * @param commands each a command name and its arguments
   * @returns `EXEC`'s reply: each command's reply in order (an error reply
   *   of one as a {@link RedisReplyError} in its place)
   * @throws {BrokerConnectionError} when Redis cannot be reached or the connection drops first
   * @throws {RedisReplyError} when a command is refused before running (`EXECABORT`)
   */
  async transaction(commands: readonly (readonly string[])[]): Promise<RespValue[]> {
    try {
      const replies = await this.#conn.commands(inTransaction(commands));
      return replies[replies.length - 1] as RespValue[];
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
  }

  /**
   * Send plain commands (no scripts, no transaction), framed together, each
   * settled on its own: the broker's LPUSHes of a publish, which must know
   * which of them Redis answered when the connection drops part way.
   *
   * @example
   * ```ts ignore
   * const [reply] = await scripts.pipeline([["LPUSH", "celery", raw]]);
   * if (reply.status === "rejected") throw reply.reason;
   * ```
   *
   * @param commands the commands, each the command name and its arguments
   * @returns their outcomes, in order; a rejection's reason is a
   *   `RedisReplyError` (the command was refused), a `BrokerConnectionError`
   *   whose cause is a `RedisReplyError` (refused too: `-LOADING`, see
   *   {@link respFailure}), or another `BrokerConnectionError` (no reply
   *   came: the command may have run)
   * @throws {BrokerConnectionError} when the server cannot be reached (nothing was sent)
   */
  async pipeline(
    commands: readonly (readonly string[])[],
  ): Promise<PromiseSettledResult<RespValue>[]> {
    let settled: PromiseSettledResult<RespValue>[];
    try {
      settled = await this.#conn.commandsSettled(commands);
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
    for (const r of settled) {
      if (r.status === "rejected") r.reason = respFailure(r.reason, this.#rawUrl);
    }
    return settled;
  }

  /**
   * Send one plain command.
   *
   * @example
   * ```ts ignore
   * const text = await scripts.command(["GET", "k"], (v) => v === null ? null : String(v));
   * ```
   *
   * @param args the command name and its arguments
   * @param decode turns the reply into the result, reading bulk strings from the read buffer
   * @returns the decoded reply
   * @throws {BrokerConnectionError} when the server cannot be reached or the connection drops
   * @throws {RedisReplyError} for an error reply
   */
  async command<T>(args: readonly string[], decode: ReplyDecoder<T>): Promise<T> {
    try {
      return await this.#conn.command(args, decode);
    } catch (err) {
      throw respFailure(err, this.#rawUrl);
    }
  }

  /** Close: replies still due are awaited (at most 2 s), then the socket is closed. */
  close(): Promise<void> {
    return this.#conn.close();
  }

  #send<T>(args: readonly (string | Uint8Array)[], decode?: ReplyDecoder<T>): Promise<T> {
    return decode ? this.#conn.command(args, decode) : this.#conn.command(args) as Promise<T>;
  }
}

/**
 * Decode a reply that is a bulk string or nil (`GET`, `BLMOVE`) as UTF-8
 * (invalid bytes become U+FFFD and a leading BOM is kept, as ioredis decodes them).
 *
 * @example
 * ```ts
 * import { textOrNull } from "./resp_scripts.ts";
 * textOrNull(new TextEncoder().encode("ok")); // "ok"
 * textOrNull(null); // null
 * ```
 *
 * @param reply the reply
 * @returns its text, or null for nil
 * @throws {TypeError} when the reply is neither
 */
export function textOrNull(reply: RespValue): string | null {
  if (reply === null) return null;
  if (reply instanceof Uint8Array) return bulkText(reply);
  throw new TypeError(`expected a bulk string or nil, got ${describe(reply)}`);
}

function describe(v: RespValue): string {
  if (v === null) return "nil";
  if (Array.isArray(v)) return "an array";
  if (v instanceof RedisReplyError) return `an error (${v.message})`;
  return typeof v;
}
