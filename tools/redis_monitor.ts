/**
 * MONITOR read from a plain socket, for the tests (tests/redis_claims_test.ts) and the
 * benchmarks (bench/rtt_breakdown.ts) alike. ioredis's monitor mode breaks ("Command queue
 * state error") when another client's command reaches the new connection before ioredis has
 * switched it to monitor mode, which on the shared server other test files cause now and
 * then; this reader sends MONITOR first, waits for its `+OK`, then parses each line.
 *
 * @module
 */

const ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '"': 34, "\\": 92 };

/** The arguments of one MONITOR line (`+1700000000.123456 [0 127.0.0.1:5000] "GET" "k"`). */
export function parseMonitorLine(line: string): string[] {
  const args: string[] = [];
  for (const [, quoted] of line.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
    const bytes: number[] = [];
    for (let i = 0; i < quoted.length; i++) {
      if (quoted[i] !== "\\") {
        bytes.push(quoted.charCodeAt(i));
      } else if (quoted[i + 1] === "x") {
        bytes.push(parseInt(quoted.slice(i + 2, i + 4), 16));
        i += 3;
      } else {
        bytes.push(ESCAPES[quoted[i + 1]] ?? quoted.charCodeAt(i + 1));
        i += 1;
      }
    }
    args.push(new TextDecoder().decode(new Uint8Array(bytes)));
  }
  return args;
}

/** Where and when the server ran a command MONITOR reported: its clock (ms) and the db. */
export interface MonitorStamp {
  /** The server's wall-clock time, milliseconds. */
  time: number;
  /** The database the command ran in. */
  db: number;
}

/** The server time and db of one MONITOR line (`+1700000000.123456 [0 127.0.0.1:5000] ...`). */
export function parseMonitorStamp(line: string): MonitorStamp {
  const open = line.indexOf("[");
  return {
    time: Number(line.slice(1, line.indexOf(" "))) * 1000,
    db: Number(line.slice(open + 1, line.indexOf(" ", open))),
  };
}

/** A MONITOR connection: listeners get every command the server runs from now on. */
export class RedisMonitor {
  readonly #conn: Deno.TcpConn;
  readonly #listeners = new Set<(args: string[], stamp: MonitorStamp) => void>();
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, rest: string) {
    this.#conn = conn;
    this.#reading = this.#read(rest);
  }

  /** Connect to `url` (host and port; no auth) and start monitoring. */
  static async open(url: string): Promise<RedisMonitor> {
    const { hostname, port } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port || 6379) });
    await conn.write(new TextEncoder().encode("MONITOR\r\n"));
    const decoder = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("Redis closed the connection before MONITOR's reply");
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const end = text.indexOf("\r\n");
    if (text.slice(0, end) !== "+OK") throw new Error(`MONITOR answered ${text.slice(0, end)}`);
    return new RedisMonitor(conn, text.slice(end + 2));
  }

  /** Call `listener` with the arguments, server time and db of every command; returns its removal. */
  on(listener: (args: string[], stamp: MonitorStamp) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #read(rest: string): Promise<void> {
    const decoder = new TextDecoder();
    let text = rest;
    const buf = new Uint8Array(65536);
    for (;;) {
      let end: number;
      while ((end = text.indexOf("\r\n")) >= 0) {
        const line = text.slice(0, end);
        text = text.slice(end + 2);
        if (this.#listeners.size === 0) continue;
        const args = parseMonitorLine(line);
        const stamp = parseMonitorStamp(line);
        for (const listener of this.#listeners) listener(args, stamp);
      }
      const n = await this.#conn.read(buf).catch(() => null);
      if (n === null) return;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
  }

  /** Close the connection and wait for the reader to end. */
  async close(): Promise<void> {
    this.#conn.close();
    await this.#reading;
  }
}
