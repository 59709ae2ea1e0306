/**
 * A small Redis connection without ioredis, for the events traffic and the
 * per-task commands on a single server (takes, acknowledgements, result
 * stores and reads, see resp_scripts.ts; the claiming waits, see
 * redis_claims.ts; the result subscriber, see ../backend/redis_results.ts): commands
 * are framed by {@link RespWriter} into one buffer and go out in one socket
 * write per turn of the event loop; replies are parsed by
 * {@link RespReader} from the socket's read buffer, pub/sub messages handed
 * to a callback as views of it. It speaks to one server (`redis://` or
 * `rediss://`): AUTH, SELECT and CLIENT SETNAME on connect, reconnect with
 * backoff after a drop (patterns and channels subscribed again), clean close; RESP2, or
 * RESP3 for a subscriber that also runs commands (`resp3`, where the server has it). Opening
 * the socket, the reconnect loop and the reply watchdog are in resp_dial.ts; the
 * commands waiting for their replies in resp_pending.ts.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { maskPassword } from "./errors.ts";
import { connectionBack, connectionDropped } from "./resp_outages.ts";
import {
  dial,
  greetingError,
  reconnect,
  RedisConnectionError,
  type RespConnectionOptions,
  startWatchdog,
} from "./resp_dial.ts";
import { greeting, greetingFailure } from "./resp_greeting.ts";
import { PendingReplies, type ReplyDecoder } from "./resp_pending.ts";
import { isMessage, RespReader, type RespValue } from "./resp_reader.ts";
import { RespWriter } from "./resp_writer.ts";

export { RedisConnectionError, type ReplyDecoder, type RespConnectionOptions };

const log = getLogger(["celeriac", "broker", "redis"]);

function hasAny(items: Iterable<unknown> | undefined): boolean {
  if (items) { for (const _ of items) return true; }
  return false;
}

type State = "idle" | "connecting" | "ready" | "waiting" | "closed";

/**
 * One connection to one Redis server. Commands sent while it connects wait
 * for it; while it waits to reconnect after a drop they fail at once (events
 * are best-effort), or with `waitForReconnect` once the next attempt failed
 * (the attempts of `reconnectWaitMs`).
 * Commands whose reply a drop lost fail (the broker and the result backend
 * retry them, see resp_scripts.ts).
 *
 * @example
 * ```ts
 * import { RespConnection } from "./resp_connection.ts";
 * const conn = new RespConnection({ host: "127.0.0.1", port: 6379 });
 * await conn.publish(new TextEncoder().encode("ch"), new TextEncoder().encode("hi"));
 * await conn.close();
 * ```
 */
export class RespConnection {
  readonly #o: RespConnectionOptions;
  readonly #label: string;
  #state: State = "idle";
  #resp3 = false;
  #conn: Deno.Conn | null = null;
  /** Whether `#conn` holds the process alive (`Deno.Conn.ref()`; a new socket does). */
  #held = true;
  #reader = new RespReader();
  readonly #writer = new RespWriter();
  #writing = false;
  #flushQueued = false;
  readonly #pending = new PendingReplies();
  /** Replies and pushes read so far (the reply watchdog's sign of life). */
  #replies = 0;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #pinger: ReturnType<typeof setInterval> | undefined;
  #opening: Promise<void> | null = null;
  /** Settles when the reconnect attempt being waited for is over. */
  #nextAttempt: Promise<void> = Promise.resolve();
  readonly #closing = new AbortController();

  /** @param options see {@link RespConnectionOptions} */
  constructor(options: RespConnectionOptions) {
    this.#o = options;
    this.#label = maskPassword(options.label ?? `${options.host}:${options.port}`);
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** `idle`, `connecting`, `ready`, `waiting` (to reconnect) or `closed`. */
  get state(): State {
    return this.#state;
  }

  /** Whether `HELLO 3` was asked for (`resp3`) and taken on the last connect (else RESP2). */
  get resp3(): boolean {
    return this.#resp3;
  }

  /**
   * Connect now (and subscribe to the patterns); resolves when ready.
   *
   * @throws {RedisConnectionError} when the server cannot be reached
   * @throws {RedisReplyError} when it refuses AUTH, SELECT or PSUBSCRIBE
   */
  connect(): Promise<void> {
    if (this.#state === "ready") return Promise.resolve();
    if (this.#state === "closed") {
      return Promise.reject(new RedisConnectionError(`connection to ${this.#label} is closed`));
    }
    return this.#opening ??= this.#open().finally(() => this.#opening = null);
  }

  /**
   * Send a command.
   *
   * @param args the command and its arguments
   * @returns the reply (bulk strings copied out of the read buffer)
   * @throws {RedisReplyError} for an error reply
   * @throws {RedisConnectionError} when the connection is down or drops first
   */
  command(args: readonly (string | Uint8Array)[]): Promise<RespValue>;
  /**
   * Send a command and turn its reply into a value with `decode`, which reads
   * the bulk strings straight from the read buffer (no copies first).
   *
   * @param args the command and its arguments
   * @param decode called with the reply (not with an error reply); what it
   *   throws rejects the command
   * @param whole the reply is an array that `decode` gets as one view of its
   *   RESP bytes (`*N\r\n`, each element as sent): no value made per element
   *   (a take's hundreds of bulk strings); another reply rejects with a `TypeError`
   * @returns what `decode` returns
   * @throws {RedisReplyError} for an error reply
   * @throws {RedisConnectionError} when the connection is down or drops first
   */
  command<T>(
    args: readonly (string | Uint8Array)[],
    decode: ReplyDecoder<T>,
    whole?: boolean,
  ): Promise<T>;
  async command<T>(
    args: readonly (string | Uint8Array)[],
    decode?: ReplyDecoder<T>,
    whole?: boolean,
  ): Promise<T | RespValue> {
    if (this.#state !== "ready") await this.#whenReady();
    this.#checkReady();
    this.#writer.command(args);
    return this.#expect(decode, whole);
  }

  /**
   * Send several commands in one go: framed together, after one check that
   * the connection is ready, so nothing another caller sends comes between
   * them (`MULTI` ... `EXEC`).
   *
   * @param list the commands, each the command name and its arguments
   * @returns their replies, in order (bulk strings copied)
   * @throws {RedisReplyError} for the first error reply
   * @throws {RedisConnectionError} when the connection is down or drops first
   */
  async commands(list: readonly (readonly (string | Uint8Array)[])[]): Promise<RespValue[]> {
    if (this.#state !== "ready") await this.#whenReady();
    this.#checkReady();
    const replies = list.map((args) => {
      this.#writer.command(args);
      return this.#expect();
    });
    return await Promise.all(replies);
  }

  /**
   * Send several commands in one go, as {@link commands} does, each settled
   * on its own: a batch that fails part way tells which commands Redis
   * answered (the broker's LPUSHes of a batch publish).
   *
   * @param list the commands, each the command name and its arguments
   * @returns each command's outcome, in order (bulk strings copied)
   * @throws {RedisConnectionError} when the connection is down before any is written
   */
  async commandsSettled(
    list: readonly (readonly (string | Uint8Array)[])[],
  ): Promise<PromiseSettledResult<RespValue>[]> {
    if (this.#state !== "ready") await this.#whenReady();
    this.#checkReady();
    return await Promise.allSettled(list.map((args) => {
      this.#writer.command(args);
      return this.#expect();
    }));
  }

  /**
   * `PUBLISH channel payload`, framed straight into the write buffer.
   *
   * @param channel the channel's bytes
   * @param payload the message: bytes, or ASCII text pieces (see `RespWriter.asciiBulk`)
   * @returns the number of subscribers that received it
   * @throws {RedisConnectionError} when the connection is down or drops first
   */
  publish(channel: Uint8Array, payload: Uint8Array | readonly string[]): Promise<number> {
    // Not an async function: one would keep its arguments (a batch of
    // events is ~60 KB of strings and bytes) until the reply, through the
    // worker's next young-generation collections, which then promote them.
    if (this.#state !== "ready") {
      return this.#whenReady().then(() => this.#publishNow(channel, payload));
    }
    return this.#publishNow(channel, payload);
  }

  /** Frame a PUBLISH now; the promise of its reply holds nothing of the payload. */
  #publishNow(channel: Uint8Array, payload: Uint8Array | readonly string[]): Promise<number> {
    try {
      this.#checkReady();
      this.#writer.publish(channel, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#expect() as Promise<number>;
  }

  /**
   * Close: replies to the commands sent are awaited (at most `waitMs`),
   * then the socket is closed; a reconnect under way stops. With `waitMs`
   * 0 the socket is closed within this call (a blocked `BLMOVE` is not
   * waited for). The server sees the close later: a command sent next on
   * another connection may run before (see redis_watchers.ts).
   *
   * @param waitMs how long to wait for replies still due. Default 2000.
   */
  async close(waitMs = 2000): Promise<void> {
    if (this.#state === "closed") return;
    const wasReady = this.#state === "ready";
    this.#state = "closed";
    this.#closing.abort();
    if (wasReady && waitMs > 0 && this.#pending.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#pending.whenIdle(),
        new Promise<void>((r) => timer = setTimeout(r, waitMs)),
      ]);
      clearTimeout(timer);
    }
    this.#drop(new RedisConnectionError(`connection to ${this.#label} closed`));
    connectionBack(this.#label, this, this.#o.role ?? "events", false);
  }

  /**
   * Drop the socket now (what waits on it fails) and dial again, as after a
   * drop: the host name is resolved anew (a server demoted behind a DNS name
   * that now points at the new master). Nothing to do unless ready.
   *
   * @param why said in the log line and the waiting commands' error
   */
  redial(why: string): void {
    if (this.#state !== "ready") return;
    this.#lost(new RedisConnectionError(`${this.#label} ${why}; reconnecting`));
  }

  /**
   * Wait as a command sent now would before it is written: connect when
   * idle, wait for a connect under way, or (with `waitForReconnect`) for
   * the next reconnect attempts. For a caller that decides only then what
   * to send (a subscription left meanwhile is not sent).
   *
   * @throws {RedisConnectionError} when the connection is not ready by then
   */
  async untilReady(): Promise<void> {
    if (this.#state !== "ready") await this.#whenReady();
    this.#checkReady();
  }

  async #whenReady(): Promise<void> {
    if (this.#state === "idle" || this.#state === "connecting") await this.connect();
    else if (this.#state === "waiting" && this.#o.waitForReconnect) {
      const until = Date.now() + (this.#o.reconnectWaitMs ?? 0);
      do await this.#nextAttempt; while (this.#state === "waiting" && Date.now() < until);
    }
  }

  /** Throw unless ready: nothing may be framed while no connection will take it. */
  #checkReady(): void {
    if (this.#state === "ready") return;
    throw new RedisConnectionError(
      this.#state === "closed"
        ? `connection to ${this.#label} is closed`
        : `connection to ${this.#label} is down; reconnecting`,
    );
  }

  #expect<T = RespValue>(decode?: ReplyDecoder<T>, whole?: boolean): Promise<T> {
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        void this.#flush();
      });
    }
    const reply = this.#pending.add(decode, whole);
    if (!this.#held) this.#hold();
    return reply;
  }

  /**
   * Hold the process alive with the socket (`ref`) only while something waits on it: a
   * reply, or a subscription's messages. An idle connection lets a script that is done
   * (a client that never called `app.close()`) exit; what still waits keeps it alive.
   */
  #hold(): void {
    const conn = this.#conn;
    if (!conn) return;
    const held = this.#pending.size > 0 || (this.#o.patterns?.length ?? 0) > 0 ||
      hasAny(this.#o.channels?.());
    if (held === this.#held) return;
    this.#held = held;
    if (held) conn.ref();
    else conn.unref();
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#writer.length > 0 && this.#conn) {
        const conn = this.#conn;
        const bytes = this.#writer.take();
        try {
          for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
        } catch (err) {
          // The loop goes on with the next connection, if one is up by now.
          if (conn === this.#conn) this.#lost(err);
          continue;
        }
        this.#writer.recycle(bytes);
      }
    } finally {
      this.#writing = false;
    }
  }

  async #open(): Promise<void> {
    this.#state = "connecting";
    const o = this.#o;
    const waitMs = o.connectTimeoutMs ?? 10_000;
    const conn = await dial(o, this.#label).catch((err) => {
      if (this.#state === "connecting") this.#state = "idle";
      throw err;
    });
    if (this.#isClosed()) {
      conn.close();
      throw new RedisConnectionError(`connection to ${this.#label} closed`);
    }
    this.#conn = conn;
    this.#held = true;
    this.#reader = new RespReader(o.readBufferBytes);
    void this.#readLoop(conn);
    const { commands, hello } = greeting(o);
    const replies = commands.map((args) => {
      this.#writer.command(args);
      return this.#expect();
    });
    const timer = setTimeout(() => {
      if (conn !== this.#conn) return;
      this.#drop(new RedisConnectionError(`${this.#label} did not answer within ${waitMs} ms`));
    }, waitMs);
    const settled = await Promise.allSettled(replies).finally(() => clearTimeout(timer));
    const failed = greetingFailure(settled, hello);
    this.#resp3 = settled[hello]?.status === "fulfilled";
    if (failed) {
      if (conn === this.#conn) this.#drop(failed.reason);
      if (this.#state === "connecting") this.#state = "idle";
      // A command that joined a connect refused at maxclients rides it out, retried.
      throw await greetingError(failed.reason, this.#label, this.#isClosed(), o);
    }
    if (conn !== this.#conn) {
      throw new RedisConnectionError(`connection to ${this.#label} closed while connecting`);
    }
    // Also when the reconnect loop began waiting meanwhile (a command started this
    // connect between its attempts): it finds the connection ready and stops.
    this.#state = "ready";
    connectionBack(this.#label, this, o.role ?? "events", true);
    this.#watch(conn);
    o.onReady?.();
    this.#hold();
  }

  /** Whether close() was called (a method: the state changes across awaits). */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    const reader = this.#reader;
    try {
      while (true) {
        const n = await conn.read(reader.space());
        if (n === null) throw new RedisConnectionError(`${this.#label} closed the connection`);
        reader.commit(n);
        reader.drain(this.#onReply, this.#o.onPush ? undefined : this.#wantsWhole);
      }
    } catch (err) {
      if (conn === this.#conn) this.#lost(err);
    }
  }

  /** Whether the next reply goes whole to its waiter (`command`'s `whole`). */
  readonly #wantsWhole = (): boolean => this.#pending.nextWantsWhole();

  readonly #onReply = (v: RespValue, whole: boolean): void => {
    this.#replies++;
    if (this.#o.onPush && Array.isArray(v) && isMessage(v[0])) {
      try {
        this.#o.onPush(v);
      } catch (err) {
        log.error("A Redis pub/sub message handler failed: {error}", {
          error: (err as Error).message,
        });
      }
      return;
    }
    if (!this.#pending.settle(v, whole)) {
      throw new RedisConnectionError(`a reply from ${this.#label} that nothing asked for`);
    }
    if (this.#pending.size === 0) this.#hold();
  };

  /** The socket failed: fail what waits, then reconnect (unless closed). */
  #lost(err: unknown): void {
    const wasReady = this.#state === "ready";
    const why = err instanceof RedisConnectionError ? err : new RedisConnectionError(
      `connection to ${this.#label} lost: ${(err as Error).message}`,
      err,
    );
    this.#drop(why);
    if (this.#state === "closed") return;
    if (!wasReady) return;
    connectionDropped(this.#label, this, this.#o.role ?? "events", why.message);
    if (this.#o.reconnect ?? true) void this.#reconnect();
    else this.#state = "idle";
  }

  /** Close the socket and fail every command waiting on it. */
  #drop(err: Error): void {
    clearInterval(this.#watchdog);
    clearInterval(this.#pinger);
    this.#watchdog = this.#pinger = undefined;
    const conn = this.#conn;
    this.#conn = null;
    if (conn) {
      try {
        conn.close();
      } catch {
        // already closed by the peer
      }
    }
    this.#writer.take();
    this.#pending.failAll(err);
  }

  /**
   * With `replyTimeoutMs`: drop `conn` once commands have waited that long
   * without a reply; with `pingEveryMs` too, PING it that often while ready.
   */
  #watch(conn: Deno.Conn): void {
    const ms = this.#o.replyTimeoutMs;
    if (!ms) return;
    this.#watchdog = startWatchdog(
      ms,
      () => conn === this.#conn,
      () => ({ idle: this.#pending.size === 0, replies: this.#replies }),
      () => this.#lost(new RedisConnectionError(`${this.#label} sent no reply for ${ms} ms`)),
    );
    const every = this.#o.pingEveryMs;
    if (!every) return;
    // Only while ready: a PING must not open a connection, nor queue behind a reconnect.
    this.#pinger = setInterval(() => {
      if (this.#state === "ready" && conn === this.#conn) this.command(["PING"]).catch(() => {});
    }, every);
    Deno.unrefTimer(this.#pinger);
  }

  #reconnect(): Promise<void> {
    return reconnect(this.#o, this.#label, this, this.#closing.signal, {
      waiting: (attempt) => {
        if (this.#state === "closed") return false;
        this.#state = "waiting";
        this.#nextAttempt = attempt;
        return true;
      },
      stillWaiting: () => this.#state === "waiting",
      connect: () => this.connect(),
    });
  }
}
