/**
 * A TCP proxy owned by a test: clients connect to `port`, every connection
 * is relayed to the target, and `cut()` breaks all current connections at
 * once (as a network failure would), while new connections still work.
 * With `delayMs`, what clients send reaches the target that much later (in
 * order), as over a slow link. `hold()` stops relaying what clients send
 * (a stalled link: their requests wait, unanswered) until `release()`.
 * `refuse()` closes every new connection at once (a server that is down)
 * until `admit()`.
 * With `filter`, each connection gets its own {@link ChunkFilter}, which sees
 * every chunk read on it before it is relayed and may hold it (by waiting)
 * or drop it.
 */

/**
 * Judges one chunk read on a connection, `upstream` when a client sent it:
 * relayed when it returns (or resolves to) true, dropped when false; the
 * connection reads nothing more meanwhile.
 */
export type ChunkFilter = (chunk: Uint8Array, upstream: boolean) => boolean | Promise<boolean>;

/** A running proxy. */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #delayMs: number;
  readonly #filter: (() => ChunkFilter) | undefined;
  readonly #open = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  readonly #relays = new Set<Promise<void>>();
  #held: PromiseWithResolvers<void> | null = null;
  #refusing = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    listener: Deno.TcpListener,
    target: { hostname: string; port: number },
    delayMs: number,
    filter: (() => ChunkFilter) | undefined,
  ) {
    this.#listener = listener;
    this.#target = target;
    this.#delayMs = delayMs;
    this.#filter = filter;
    this.#accepting = this.#accept();
  }

  /**
   * Listen on a free local port and relay to `hostname:port`.
   *
   * @example
   * ```ts ignore
   * const slow = TcpProxy.start({ hostname: "127.0.0.1", port: 6379 }, { delayMs: 30 });
   * ```
   */
  static start(
    target: { hostname: string; port: number },
    options: { delayMs?: number; filter?: () => ChunkFilter } = {},
  ): TcpProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new TcpProxy(listener, target, options.delayMs ?? 0, options.filter);
  }

  /** The local port clients connect to. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** How many client connections are open now. */
  get connections(): number {
    return this.#open.size / 2;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      this.accepted++;
      if (this.#refusing) {
        client.close();
        continue;
      }
      let server: Deno.Conn;
      try {
        server = await Deno.connect(this.#target);
      } catch {
        client.close();
        continue;
      }
      this.#open.add(client);
      this.#open.add(server);
      const filter = this.#filter?.();
      const relay = Promise.all([
        this.#pipe(client, server, this.#delayMs, true, filter),
        this.#pipe(server, client, 0, false, filter),
      ])
        .then(() => {});
      this.#relays.add(relay);
      relay.finally(() => this.#relays.delete(relay));
    }
  }

  async #pipe(
    from: Deno.Conn,
    to: Deno.Conn,
    delayMs: number,
    upstream: boolean,
    filter: ChunkFilter | undefined,
  ): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    let sent = Promise.resolve();
    const write = async (chunk: Uint8Array, at: number) => {
      const wait = at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      let off = 0;
      while (off < chunk.length) off += await to.write(chunk.subarray(off));
    };
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        while (upstream && this.#held) await this.#held.promise;
        if (filter && !(await filter(buf.subarray(0, n), upstream))) continue;
        if (delayMs === 0) {
          await write(buf.subarray(0, n), 0);
          continue;
        }
        const chunk = buf.slice(0, n);
        const at = performance.now() + delayMs;
        sent = sent.then(() => write(chunk, at)).catch(() => {
          this.#close(from);
          this.#close(to);
        });
      }
      await sent;
    } catch {
      // the other side was cut
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

  /** Stop relaying what clients send (read, then held) until {@link release}. */
  hold(): void {
    this.#held ??= Promise.withResolvers();
  }

  /** Relay again what clients send, what was held first. */
  release(): void {
    this.#held?.resolve();
    this.#held = null;
  }

  /** Close every new connection at once (open ones stay) until {@link admit}. */
  refuse(): void {
    this.#refusing = true;
  }

  /** Relay new connections again. */
  admit(): void {
    this.#refusing = false;
  }

  /** Break every open connection now (what was held is dropped); resolves once their relays stopped. */
  async cut(): Promise<void> {
    this.release();
    for (const c of [...this.#open]) this.#close(c);
    await Promise.all([...this.#relays]);
  }

  /** Cut everything and stop listening. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.cut();
    await this.#accepting.catch(() => {});
  }
}
