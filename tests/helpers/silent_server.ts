/**
 * A TCP server that accepts connections and never answers: a broker whose
 * host is up but whose server hangs. Listens on 127.0.0.1 at a port the
 * test reserved (ports.ts), never a shared server's.
 */

/** A TCP server that accepts connections and never writes a byte. */
export class SilentServer implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #conns: Deno.Conn[] = [];
  readonly #accepted = Promise.withResolvers<Deno.Conn>();
  readonly #loop: Promise<void>;

  /** @param port where to listen */
  constructor(port: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.#loop = (async () => {
      try {
        for await (const conn of listener) {
          this.#conns.push(conn);
          this.#accepted.resolve(conn);
        }
      } catch {
        // closed
      }
    })();
  }

  /** The first connection accepted. */
  get accepted(): Promise<Deno.Conn> {
    return this.#accepted.promise;
  }

  /** How many connections it accepted so far. */
  get connections(): number {
    return this.#conns.length;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#loop;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
  }
}
