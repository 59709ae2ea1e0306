/**
 * The general connection of the broker, the result backend and the beat
 * store on a single Redis server (`redis://`, `rediss://`) without ioredis:
 * the {@link RedisClient} commands over one {@link RespConnection}. Queue
 * declarations, routing, restore sweeps, parking, revoked ids, chords and
 * result deletions go through it; replies come as ioredis gives them (bulk
 * strings as UTF-8 text, integers as numbers, nil as null, `HGETALL` as an
 * object), so the same code runs on ioredis through Sentinel and on a
 * Cluster. It connects on its first command and reconnects after a drop
 * (backoff from 50 ms up to 500 ms); a command sent while it reconnects waits
 * across the attempts of the next second (a restart of up to about 1.2 s),
 * and fails once one fails after that (ioredis with `maxRetriesPerRequest`
 * 3 rode out about 0.7 s). A command left without a reply for the URL's
 * `?socket_timeout=` (else 30 s) drops the connection, which then reconnects.
 * Failures are `RedisConnectionError`s (a connection failure, see
 * `isConnectionFailure` in redis_failures.ts) and `RedisReplyError`s.
 *
 * @module
 */

import type { RedisBatch, RedisClient } from "./redis_client.ts";
import { BLOCKING_MS, commandTimeoutOf, type RedisUrlOptions } from "./redis_url.ts";
import { RespConnection } from "./resp_connection.ts";
import { RedisReplyError, type RespValue } from "./resp_reader.ts";
import { commandSettings, inTransaction, RespScript, runScript } from "./resp_scripts.ts";
import { bulkText } from "./resp_strings.ts";
import { CLOSE_WAIT_MS } from "./sleep.ts";

/**
 * How long a command sent while the connection reconnects keeps waiting for
 * the next attempts, ms.
 */
const RECONNECT_WAIT_MS = 1_000;

/** A reply as ioredis gives it: bulk strings decoded as UTF-8 straight from the read buffer. */
function toJs(v: RespValue): unknown {
  if (v instanceof Uint8Array) return bulkText(v);
  if (Array.isArray(v)) return v.map(toJs);
  return v;
}

/** `HGETALL`'s flat field/value list as an object (as ioredis gives it). */
function toObject(v: unknown): Record<string, string> {
  const flat = v as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

type Arg = string | number | Uint8Array;

const wire = (a: Arg): string | Uint8Array => typeof a === "number" ? String(a) : a;

/** A defined script: its source and SHA-1, and its number of keys when fixed. */
interface Defined {
  readonly script: RespScript;
  readonly keys: number | undefined;
}

/** A script call's arguments: `EVALSHA sha numkeys keys... args...` without the first two. */
function scriptArgs(d: Defined, args: readonly Arg[]): Arg[] {
  return d.keys === undefined ? [...args] : [d.keys, ...args];
}

/** Options of {@link RespClient}. */
export interface RespClientOptions {
  /** Connection name (`CLIENT SETNAME`). Default none. */
  name?: string;
  /** For `BRPOP` of up to 1 s: its replies are waited for 1 s longer. Default false. */
  blocking?: boolean;
}

/**
 * A {@link RedisClient} over Celeriac's own RESP connection.
 *
 * @example
 * ```ts
 * import { RespClient } from "./resp_client.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0";
 * const client = new RespClient(parseRedisUrl(url), url, { name: "celeriac-broker" });
 * await client.llen("celery");
 * await client.quit();
 * ```
 */
export class RespClient implements RedisClient {
  /** The settings a {@link RespClient.duplicate} copies. */
  readonly #url: RedisUrlOptions;
  readonly #rawUrl: string;
  readonly #conn: RespConnection;
  /** Its transactions' class: the defined scripts are methods of its prototype. */
  readonly #Transaction = class extends RespTransaction {};
  /** The reply timeout, ms: the URL's `socket_timeout`, else 30 s (+ 1 s when blocking). */
  readonly commandTimeout: number;

  /**
   * @param url the parsed URL (a single server)
   * @param rawUrl the URL text, for errors and log lines
   * @param options connection name, blocking
   */
  constructor(url: RedisUrlOptions, rawUrl: string, options: RespClientOptions = {}) {
    this.#url = url;
    this.#rawUrl = rawUrl;
    this.commandTimeout = commandTimeoutOf(url, rawUrl) + (options.blocking ? BLOCKING_MS : 0);
    this.#conn = new RespConnection({
      ...commandSettings(url, rawUrl, {
        reconnectWaitMs: RECONNECT_WAIT_MS,
        replyTimeoutMs: this.commandTimeout,
      }),
      name: options.name,
      role: options.name?.replace(/^celeriac-/, "") ?? "commands",
    });
  }

  /**
   * A new connection to the same server with the same settings (a blocking
   * command must not hold up this one's), without this one's scripts.
   *
   * @param name its connection name
   * @param blocking for `BRPOP` of up to 1 s
   * @returns the new (lazily connecting) client
   */
  duplicate(name: string, blocking = false): RespClient {
    return new RespClient(this.#url, this.#rawUrl, { name, blocking });
  }

  /** @throws {RedisConnectionError} or {RedisReplyError} (AUTH, SELECT refused) */
  connect(): Promise<void> {
    return this.#conn.connect();
  }

  /** Close once the replies due have come (at most `CLOSE_WAIT_MS`). */
  async quit(): Promise<"OK"> {
    await this.#conn.close(CLOSE_WAIT_MS);
    return "OK";
  }

  /**
   * Close now, or with `reconnect` (a write refused as READONLY inside a
   * transaction) drop the socket and dial again: a server name behind which
   * a failover put the new master is resolved anew.
   */
  disconnect(reconnect = false): void {
    if (reconnect) this.#conn.redial("asked to reconnect");
    else void this.#conn.close(0);
  }

  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void {
    const d: Defined = { script: new RespScript(definition.lua), keys: definition.numberOfKeys };
    Object.defineProperty(this, name, {
      value: (...args: Arg[]) => this.evalScript(d, scriptArgs(d, args)),
      configurable: true,
    });
    Object.defineProperty(this.#Transaction.prototype, name, {
      value(this: RespTransaction, ...args: Arg[]) {
        return this.evalsha(d, scriptArgs(d, args));
      },
      configurable: true,
    });
  }

  /** Run a defined script: `EVALSHA`, or `EVAL` (which loads it) when the server lacks it. */
  evalScript(d: Defined, args: readonly Arg[]): Promise<unknown> {
    const command = new Array<string | Uint8Array>(2 + args.length);
    for (let i = 0; i < args.length; i++) command[2 + i] = wire(args[i]);
    return runScript(d.script, command, (c) => this.send(c));
  }

  /**
   * Send one command. A write refused with READONLY (the server was demoted
   * to a replica, a failover behind its DNS name) reconnects and is sent
   * once more (nothing ran), as ioredis' `reconnectOnError` did.
   *
   * @param args the command name and its arguments
   * @returns the reply, as ioredis gives it
   */
  async send(args: readonly Arg[]): Promise<unknown> {
    const wired = args.map(wire);
    try {
      return await this.#conn.command(wired, toJs);
    } catch (err) {
      if (!(err instanceof RedisReplyError) || err.code !== "READONLY") throw err;
      this.#conn.redial("refused a write as a replica (READONLY)");
      return await this.#conn.command(wired, toJs);
    }
  }

  multi(): RedisBatch {
    return new this.#Transaction(this.#conn);
  }

  brpop(key: string, timeout: number): Promise<[string, string] | null> {
    return this.send(["BRPOP", key, timeout]) as Promise<[string, string] | null>;
  }
  del(...keys: string[]): Promise<number> {
    return this.send(["DEL", ...keys]) as Promise<number>;
  }
  get(key: string): Promise<string | null> {
    return this.send(["GET", key]) as Promise<string | null>;
  }
  hdel(key: string, ...fields: string[]): Promise<number> {
    return this.send(["HDEL", key, ...fields]) as Promise<number>;
  }
  hget(key: string, field: string): Promise<string | null> {
    return this.send(["HGET", key, field]) as Promise<string | null>;
  }
  async hgetall(key: string): Promise<Record<string, string>> {
    return toObject(await this.send(["HGETALL", key]));
  }
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]> {
    return this.send(["HMGET", key, ...fields]) as Promise<(string | null)[]>;
  }
  hset(key: string, field: string, value: string): Promise<number> {
    return this.send(["HSET", key, field, value]) as Promise<number>;
  }
  llen(key: string): Promise<number> {
    return this.send(["LLEN", key]) as Promise<number>;
  }
  lpush(key: string, ...elements: string[]): Promise<number> {
    return this.send(["LPUSH", key, ...elements]) as Promise<number>;
  }
  lrange(key: string, start: number, stop: number): Promise<string[]> {
    return this.send(["LRANGE", key, start, stop]) as Promise<string[]>;
  }
  ping(): Promise<string> {
    return this.send(["PING"]) as Promise<string>;
  }
  publish(channel: string, message: string | Uint8Array): Promise<number> {
    return this.send(["PUBLISH", channel, message]) as Promise<number>;
  }
  sadd(key: string, ...members: string[]): Promise<number> {
    return this.send(["SADD", key, ...members]) as Promise<number>;
  }
  set(key: string, value: string, px: "PX", ms: number, nx: "NX"): Promise<"OK" | null> {
    return this.send(["SET", key, value, px, ms, nx]) as Promise<"OK" | null>;
  }
  smembers(key: string): Promise<string[]> {
    return this.send(["SMEMBERS", key]) as Promise<string[]>;
  }
  srem(key: string, ...members: string[]): Promise<number> {
    return this.send(["SREM", key, ...members]) as Promise<number>;
  }
  zadd(key: string, ...args: (string | number)[]): Promise<number | string | null> {
    return this.send(["ZADD", key, ...args]) as Promise<number | string | null>;
  }
  zmscore(key: string, ...members: string[]): Promise<(string | null)[]> {
    return this.send(["ZMSCORE", key, ...members]) as Promise<(string | null)[]>;
  }
  zrange(key: string, start: string, stop: string): Promise<string[]> {
    return this.send(["ZRANGE", key, start, stop]) as Promise<string[]>;
  }
  zrangebyscore(
    key: string,
    min: string | number,
    max: string | number,
    withscores?: "WITHSCORES",
  ): Promise<string[]> {
    const args = ["ZRANGEBYSCORE", key, min, max];
    return this.send(withscores ? [...args, withscores] : args) as Promise<string[]>;
  }
  zrem(key: string, ...members: string[]): Promise<number> {
    return this.send(["ZREM", key, ...members]) as Promise<number>;
  }
  zrevrangebyscore(key: string, max: string | number, min: string | number): Promise<string[]> {
    return this.send(["ZREVRANGEBYSCORE", key, max, min]) as Promise<string[]>;
  }
}

/**
 * A transaction of a {@link RespClient}: its commands are framed together
 * (`MULTI`, the commands, `EXEC`) when `exec()` is called, so that nothing
 * else sent on the connection comes between them. Defined scripts are
 * methods of it too (`EVALSHA` inside the transaction).
 */
class RespTransaction implements RedisBatch {
  readonly #conn: RespConnection;
  readonly #commands: (string | Uint8Array)[][] = [];
  /** The scripts its commands run. */
  readonly #used = new Set<Defined>();

  constructor(conn: RespConnection) {
    this.#conn = conn;
  }

  /** Queue a defined script's `EVALSHA` (`args` after the SHA-1). */
  evalsha(d: Defined, args: readonly Arg[]): this {
    this.#used.add(d);
    return this.#add(["EVALSHA", d.script.sha, ...args]);
  }

  #add(args: readonly Arg[]): this {
    this.#commands.push(args.map(wire));
    return this;
  }

  del(...keys: string[]): this {
    return this.#add(["DEL", ...keys]);
  }
  expire(key: string, seconds: number): this {
    return this.#add(["EXPIRE", key, seconds]);
  }
  get(key: string): this {
    return this.#add(["GET", key]);
  }
  hdel(key: string, ...fields: string[]): this {
    return this.#add(["HDEL", key, ...fields]);
  }
  llen(key: string): this {
    return this.#add(["LLEN", key]);
  }
  pttl(key: string): this {
    return this.#add(["PTTL", key]);
  }
  publish(channel: string, message: string): this {
    return this.#add(["PUBLISH", channel, message]);
  }
  set(key: string, value: string): this {
    return this.#add(["SET", key, value]);
  }
  setex(key: string, seconds: number, value: string): this {
    return this.#add(["SETEX", key, seconds, value]);
  }
  zadd(key: string, ...args: (string | number)[]): this {
    return this.#add(["ZADD", key, ...args]);
  }
  zcount(key: string, min: string | number, max: string | number): this {
    return this.#add(["ZCOUNT", key, min, max]);
  }
  zrem(key: string, ...members: string[]): this {
    return this.#add(["ZREM", key, ...members]);
  }
  zremrangebyscore(key: string, min: string | number, max: string | number): this {
    return this.#add(["ZREMRANGEBYSCORE", key, min, max]);
  }
  zremrangebyrank(key: string, start: number, stop: number): this {
    return this.#add(["ZREMRANGEBYRANK", key, start, stop]);
  }

  /**
   * Send `MULTI`, the commands and `EXEC` in one write, after a `SCRIPT
   * LOAD` of each script the transaction runs (as ioredis makes sure of
   * them first): an `EVALSHA` the server lacks would fail inside `EXEC`
   * while the rest ran. (Only requeues run scripts in a transaction, so
   * their source going along each time costs little.) A refused `SCRIPT
   * LOAD` (an ACL without it) does not stop the transaction: the `EVALSHA`
   * fails inside it with `NOSCRIPT`, given as the load's error.
   *
   * @returns each command's error (null when it ran) and reply
   * @throws {RedisReplyError} `EXECABORT` when a command was refused as it was
   *   queued (its error in `previousErrors`, as ioredis has it)
   * @throws {RedisConnectionError} when the connection is down or drops first
   */
  async exec(): Promise<[Error | null, unknown][] | null> {
    const loads = [...this.#used].map((d) => ["SCRIPT", "LOAD", d.script.lua]);
    const settled = await this.#conn.commandsSettled([...loads, ...inTransaction(this.#commands)]);
    const replies = settled.map((s) => {
      if (s.status === "fulfilled") return s.value;
      if (s.reason instanceof RedisReplyError) return s.reason;
      throw s.reason;
    });
    const unloaded = new Map<string, RedisReplyError>();
    [...this.#used].forEach((d, i) => {
      const r = replies[i];
      if (r instanceof RedisReplyError) unloaded.set(d.script.sha, r);
    });
    const queued = replies.slice(loads.length + 1, -1);
    const refused = queued.filter((r): r is RedisReplyError => r instanceof RedisReplyError);
    const result = replies[replies.length - 1];
    if (result instanceof RedisReplyError) {
      throw Object.assign(result, { previousErrors: refused });
    }
    if (result === null) return null;
    return (result as RespValue[]).map((v, i): [Error | null, unknown] => {
      if (v instanceof RedisReplyError) {
        const [name, sha] = this.#commands[i];
        const load = name === "EVALSHA" && v.code === "NOSCRIPT" && unloaded.get(String(sha));
        return [load || v, null];
      }
      return [null, toJs(v)];
    });
  }
}
