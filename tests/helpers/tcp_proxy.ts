/**
 * A TCP proxy owned by a test: clients connect to `port`, every connection
 * is relayed to the target, and `cut()` breaks all current connections at
 * once (as a network failure would), while new connections still work.
 */

/** A running proxy. */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #open = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  readonly #relays = new Set<Promise<void>>();
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** Listen on a free local port and relay to `hostname:port`. */
  static start(target: { hostname: string; port: number }): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), target);
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
      let server: Deno.Conn;
      try {
        server = await Deno.connect(this.#target);
      } catch {
        client.close();
        continue;
      }
      this.#open.add(client);
      this.#open.add(server);
      const relay = Promise.all([this.#pipe(client, server), this.#pipe(server, client)])
        .then(() => {});
      this.#relays.add(relay);
      relay.finally(() => this.#relays.delete(relay));
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
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

  /** Break every open connection now; resolves once their relays stopped. */
  async cut(): Promise<void> {
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
