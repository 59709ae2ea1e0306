/**
 * A TCP proxy owned by a test that can lose replies: with `holdReplies()`
 * what the server sends is dropped (the client's commands still arrive and
 * run), and `cut()` then closes every connection, as a network failure
 * between a command and its reply would. With `pauseReplies()` they are
 * held back instead (relayed, in order, by `resumeReplies()`), as a slow
 * server would. `holdReplies(n)` and `pauseReplies(n)` drop or hold back the
 * replies of the connections accepted as number n only (0 first), as a
 * server hung for one client or a slow connect would.
 */

/** A running lossy proxy. */
export class LossyProxy {
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Deno.Conn>();
  #dropping = false;
  /** Connections (by accept number) whose replies are dropped. */
  readonly #held = new Set<number>();
  #refusing = false;
  #accepted = 0;
  /** While replies are paused: resolved by `resumeReplies()`. */
  #paused: PromiseWithResolvers<void> | null = null;
  /** The connections (by accept number) whose replies are paused; null: every one. */
  #pausedOnly: Set<number> | null = new Set();

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#accept(target);
  }

  /** Listen on a free local port and relay to `hostname:port`. */
  static start(target: { hostname: string; port: number }): LossyProxy {
    return new LossyProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), target);
  }

  /**
   * A proxy to the server of a `redis://` or `amqp://` URL, and the same URL
   * (credentials, path, query) through it.
   */
  static before(url: string): { proxy: LossyProxy; url: string } {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol.startsWith("amqp") ? 5672 : 6379));
    const proxy = LossyProxy.start({ hostname: u.hostname, port });
    u.hostname = "127.0.0.1";
    u.port = String(proxy.port);
    return { proxy, url: u.href };
  }

  /** The local port clients connect to. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections relayed so far (refused ones not counted). */
  get accepted(): number {
    return this.#accepted;
  }

  /**
   * Drop everything the server sends from now on (until `cut()`): on every
   * connection, or on those accepted as the numbers given (0 first).
   */
  holdReplies(...connections: number[]): void {
    if (connections.length === 0) this.#dropping = true;
    for (const n of connections) this.#held.add(n);
  }

  /**
   * Hold back what the server sends from now on, until `resumeReplies()`: on
   * every connection, or on those accepted as the numbers given (0 first).
   */
  pauseReplies(...connections: number[]): void {
    this.#paused ??= Promise.withResolvers<void>();
    if (connections.length === 0) this.#pausedOnly = null;
    else for (const n of connections) this.#pausedOnly?.add(n);
  }

  /** Relay what was held back by `pauseReplies()`, and what follows, again. */
  resumeReplies(): void {
    this.#paused?.resolve();
    this.#paused = null;
    this.#pausedOnly = new Set();
  }

  /** Refuse new connections (true) or accept them again (false). */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  /** Close every open connection; new ones are relayed normally. */
  cut(): void {
    this.#dropping = false;
    this.#held.clear();
    for (const c of [...this.#open]) this.#close(c);
  }

  async #accept(target: { hostname: string; port: number }): Promise<void> {
    try {
      for await (const client of this.#listener) {
        if (this.#refusing) {
          client.close();
          continue;
        }
        let server: Deno.Conn;
        try {
          server = await Deno.connect(target);
        } catch {
          client.close();
          continue;
        }
        const number = this.#accepted++;
        this.#open.add(client);
        this.#open.add(server);
        this.#pipe(client, server, null);
        this.#pipe(server, client, number);
      }
    } catch {
      // listener closed
    }
  }

  /** Relay `from` to `to`; `replies`: the accept number of a server-to-client relay, else null. */
  async #pipe(from: Deno.Conn, to: Deno.Conn, replies: number | null): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (replies !== null && (this.#dropping || this.#held.has(replies))) continue;
        if (replies !== null && this.#paused && (this.#pausedOnly?.has(replies) ?? true)) {
          await this.#paused.promise;
        }
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // cut
    } finally {
      this.#close(from);
      this.#close(to);
    }
  }

  #close(conn: Deno.Conn): void {
    if (!this.#open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  /** Stop listening and close every connection. */
  close(): void {
    this.resumeReplies();
    this.cut();
    this.#listener.close();
  }
}
