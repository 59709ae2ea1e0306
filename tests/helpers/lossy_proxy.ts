/**
 * A TCP proxy owned by a test that can lose replies: with `holdReplies()`
 * what the server sends is dropped (the client's commands still arrive and
 * run), and `cut()` then closes every connection, as a network failure
 * between a command and its reply would. With `pauseReplies()` they are
 * held back instead (relayed, in order, by `resumeReplies()`), as a slow
 * server would.
 */

/** A running lossy proxy. */
export class LossyProxy {
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Deno.Conn>();
  #dropping = false;
  #refusing = false;
  #accepted = 0;
  /** While replies are paused: resolved by `resumeReplies()`. */
  #paused: PromiseWithResolvers<void> | null = null;

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#accept(target);
  }

  /** Listen on a free local port and relay to `hostname:port`. */
  static start(target: { hostname: string; port: number }): LossyProxy {
    return new LossyProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), target);
  }

  /** The local port clients connect to. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections relayed so far (refused ones not counted). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Drop everything the server sends from now on (until `cut()`). */
  holdReplies(): void {
    this.#dropping = true;
  }

  /** Hold back what the server sends from now on, until `resumeReplies()`. */
  pauseReplies(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  /** Relay what was held back by `pauseReplies()`, and what follows, again. */
  resumeReplies(): void {
    this.#paused?.resolve();
    this.#paused = null;
  }

  /** Refuse new connections (true) or accept them again (false). */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  /** Close every open connection; new ones are relayed normally. */
  cut(): void {
    this.#dropping = false;
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
        this.#accepted++;
        this.#open.add(client);
        this.#open.add(server);
        this.#pipe(client, server, false);
        this.#pipe(server, client, true);
      }
    } catch {
      // listener closed
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, replies: boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (replies && this.#dropping) continue;
        if (replies && this.#paused) await this.#paused.promise;
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
