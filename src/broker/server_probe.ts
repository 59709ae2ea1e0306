/**
 * Which kind of server answers at an address, for a connect that failed in a
 * way that says nothing about it: an `amqp://` URL that names Redis's port
 * waits for a greeting Redis never sends (`connect ETIMEDOUT`), a `redis://`
 * URL that names RabbitMQ's port gets its connection reset. A second,
 * short connection sends 8 bytes, `PING\r\n\r\n`: RabbitMQ answers anything
 * that is not an AMQP header with its own header (`AMQP\x00\x00\x09\x01`)
 * and closes; Redis answers the PING with `+PONG`, or `-NOAUTH`, `-ERR`,
 * `-DENIED`. Eight bytes, because RabbitMQ reads that many before it
 * answers, and a close with bytes left unread resets the connection (its
 * reply lost).
 *
 * @module
 */

/** A kind of server Celeriac speaks to over TCP. */
export type ServerKind = "amqp" | "redis";

const FOUND: Record<ServerKind, string> = { amqp: "AMQP (RabbitMQ?)", redis: "Redis" };
const EXPECTED: Record<ServerKind, string> = { amqp: "AMQP", redis: "Redis" };
const SCHEMES: Record<ServerKind, string> = { amqp: "amqp://", redis: "redis://" };
const DEFAULT_PORTS: Record<ServerKind, number> = { amqp: 5672, redis: 6379 };
const TRANSPORTS: Record<ServerKind, string> = { amqp: "RabbitMQ", redis: "Redis" };

/**
 * The server at the URL's address speaks another protocol than the URL's
 * scheme: a Redis URL with RabbitMQ's port, or the other way round. Only a
 * change of the URL fixes it.
 *
 * @example
 * ```ts
 * import { WrongServerError } from "./server_probe.ts";
 * const err = new WrongServerError("redis", "amqp", "127.0.0.1", 5672);
 * err.message; // "the server at 127.0.0.1:5672 speaks AMQP (RabbitMQ?), not Redis"
 * err.code; // "WRONG_SERVER"
 * ```
 */
export class WrongServerError extends Error {
  /** Stable code for programmatic checks. */
  readonly code = "WRONG_SERVER";
  /** What the URL's scheme asked for. */
  readonly expected: ServerKind;
  /** What answered. */
  readonly found: ServerKind;
  /** What to change. */
  readonly hint: string;

  /**
   * @param expected what the URL's scheme asked for
   * @param found what answered
   * @param host the host the URL names
   * @param port the port the URL names
   */
  constructor(expected: ServerKind, found: ServerKind, host: string, port: number) {
    super(`the server at ${host}:${port} speaks ${FOUND[found]}, not ${EXPECTED[expected]}`);
    this.name = "WrongServerError";
    this.expected = expected;
    this.found = found;
    this.hint = `Use ${SCHEMES[found]}${host}:${port}/… for ${TRANSPORTS[found]}, or the ` +
      `${TRANSPORTS[expected]} port (${DEFAULT_PORTS[expected]} by default) in the ` +
      `${SCHEMES[expected]} URL`;
  }
}

/**
 * Ask what kind of server listens at an address (plain TCP): `PING\r\n\r\n`
 * and its first reply bytes.
 *
 * @example
 * ```ts
 * import { probeServer } from "./server_probe.ts";
 * await probeServer("127.0.0.1", 5672); // "amqp"
 * ```
 *
 * @param host the host
 * @param port the port
 * @param timeoutMs how long the connect, the write and the reply may take together. Default 1000.
 * @returns the kind of server, or `undefined` when none answered or the answer is neither
 */
export async function probeServer(
  host: string,
  port: number,
  timeoutMs = 1000,
): Promise<ServerKind | undefined> {
  let conn: Deno.Conn | undefined;
  let late = false;
  const connecting = new AbortController();
  const timer = setTimeout(() => {
    late = true;
    connecting.abort(); // a host that drops packets: no waiting for the kernel's SYN retries
    conn?.close(); // ends a read that waits
  }, timeoutMs);
  try {
    conn = await Deno.connect({ hostname: host, port, signal: connecting.signal });
    await conn.write(new TextEncoder().encode("PING\r\n\r\n"));
    const buf = new Uint8Array(16);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    const head = new TextDecoder().decode(buf.subarray(0, got));
    if (head.startsWith("AMQP")) return "amqp";
    if (/^[+-][A-Z]/.test(head)) return "redis";
    return undefined;
  } catch {
    // refused, closed by the timer, no permission: nothing to tell
    return undefined;
  } finally {
    clearTimeout(timer);
    if (!late) conn?.close();
  }
}

/**
 * After a failed connect: a {@link WrongServerError} when the server at the
 * address speaks another protocol than `expected`, else `err` itself. TLS
 * connections are not probed (the probe speaks plain TCP).
 *
 * @example
 * ```ts
 * import { wrongServer } from "./server_probe.ts";
 * const err = new Error("Connection closed");
 * throw await wrongServer(err, "redis", "127.0.0.1", 5672, false);
 * ```
 *
 * @param err the connect's error
 * @param expected what the URL's scheme asked for
 * @param host the host the URL names
 * @param port the port the URL names
 * @param tls whether the URL asked for TLS
 * @returns a {@link WrongServerError}, or `err`
 */
export async function wrongServer(
  err: unknown,
  expected: ServerKind,
  host: string,
  port: number,
  tls: boolean,
): Promise<unknown> {
  if (tls) return err;
  const found = await probeServer(host, port);
  return found && found !== expected ? new WrongServerError(expected, found, host, port) : err;
}

/**
 * The {@link WrongServerError} an error is or was caused by (its `cause`
 * chain), if any.
 *
 * @example
 * ```ts
 * import { WrongServerError, wrongServerIn } from "./server_probe.ts";
 * const err = new Error("cannot connect", { cause: new WrongServerError("amqp", "redis", "h", 6379) });
 * wrongServerIn(err)?.found; // "redis"
 * ```
 *
 * @param err any error
 * @returns the wrong-server error, or `undefined`
 */
export function wrongServerIn(err: unknown): WrongServerError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof WrongServerError) return e;
  }
  return undefined;
}
