/**
 * What a {@link RespConnection} says on connect, and which of the replies
 * fail the connect: pure logic, apart from the socket (resp_connection.ts).
 *
 * @module
 */

import type { RespConnectionOptions } from "./resp_dial.ts";
import { RedisReplyError } from "./resp_reader.ts";

/**
 * The commands of a connect, in order, and where HELLO 3 is among them.
 *
 * @example
 * ```ts
 * import { greeting } from "./resp_greeting.ts";
 * greeting({ host: "127.0.0.1", port: 6379, password: "pw", resp3: true });
 * // { commands: [["AUTH", "pw"], ["HELLO", "3"]], hello: 1 }
 * ```
 */
export interface Greeting {
  /** AUTH, HELLO 3, SELECT, CLIENT SETNAME, the (P)SUBSCRIBEs; a PING when nothing else. */
  commands: string[][];
  /** The index of HELLO 3 in `commands`; -1 without one. */
  hello: number;
}

/**
 * The commands a connection sends on connect: AUTH (with the ACL user if
 * any), HELLO 3 for `resp3`, SELECT, CLIENT SETNAME, then its patterns and
 * channels subscribed again; a lone PING when there is nothing else to say,
 * so that the connect resolves once the server answers.
 *
 * @example
 * ```ts
 * import { greeting } from "./resp_greeting.ts";
 * greeting({ host: "127.0.0.1", port: 6379, db: 2 }).commands; // [["SELECT", "2"]]
 * ```
 *
 * @param o the connection's options
 * @returns the commands and where HELLO is
 */
export function greeting(o: RespConnectionOptions): Greeting {
  const commands: string[][] = [];
  if (o.password !== undefined) {
    commands.push(o.username ? ["AUTH", o.username, o.password] : ["AUTH", o.password]);
  }
  const hello = o.resp3 ? commands.length : -1;
  if (o.resp3) commands.push(["HELLO", "3"]);
  if (o.db) commands.push(["SELECT", String(o.db)]);
  if (o.name) commands.push(["CLIENT", "SETNAME", o.name]);
  for (const p of o.patterns ?? []) commands.push(["PSUBSCRIBE", p]);
  for (const c of o.channels?.() ?? []) commands.push(["SUBSCRIBE", c]);
  if (commands.length === 0) commands.push(["PING"]);
  return { commands, hello };
}

/**
 * The reply that fails a connect, if any: any failure but HELLO's error
 * reply (an unknown command, NOPROTO), after which the connection goes on in
 * RESP2.
 *
 * @example
 * ```ts
 * import { greetingFailure } from "./resp_greeting.ts";
 * import { RedisReplyError } from "./resp_reader.ts";
 * const refused = { status: "rejected", reason: new RedisReplyError("ERR unknown command") } as const;
 * greetingFailure([refused], 0); // undefined: HELLO refused, RESP2
 * ```
 *
 * @param settled the greeting's replies, in order
 * @param hello where HELLO 3 is (see {@link Greeting})
 * @returns the rejected reply that fails the connect, or undefined
 */
export function greetingFailure(
  settled: readonly PromiseSettledResult<unknown>[],
  hello: number,
): PromiseRejectedResult | undefined {
  return settled.find((s, i): s is PromiseRejectedResult =>
    s.status === "rejected" && !(i === hello && s.reason instanceof RedisReplyError)
  );
}
