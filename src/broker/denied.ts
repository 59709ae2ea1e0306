/**
 * Connections Deno refused for want of a permission (`NotCapable`, or
 * node's `getaddrinfo EPERM` of a host name it may not look up): what was
 * refused, and the narrow flag that allows it. A {@link BrokerConnectionError}
 * says these instead of the raw error.
 *
 * @module
 */

/** A connection Deno refused for want of a permission: what, and the flag that allows it. */
export interface Denied {
  /** What was refused, in Deno's words. */
  reason: string;
  /** The Deno flag to run with. */
  hint: string;
  /** Only new flags fix it. */
  transient: false;
  /** A permission, not the URL: the message does not list where the URL came from. */
  permission: true;
}

/**
 * Deno's refusal of an operation the process has no permission for
 * (`NotCapable`: "Requires net access to ..., run again with the --allow-net
 * flag"): only new flags fix it, so trying again cannot help. The hint
 * gives the flag for just what was asked (`--allow-net=127.0.0.1:6379`),
 * the narrow form the README recommends.
 *
 * @example
 * ```ts
 * deniedPermission(new Deno.errors.NotCapable("Requires write access to \"/data\"..."))?.hint;
 * // "Run deno with --allow-write=/data"
 * ```
 *
 * @param cause the connection's error
 * @returns the reason and what to change, or `undefined` for another error
 */
export function deniedPermission(
  cause: unknown,
): Denied | undefined {
  if (!(cause instanceof Deno.errors.NotCapable)) return undefined;
  // "Requires net access to "127.0.0.1:6379", run again with the --allow-net flag"
  const asked = /Requires (\w+) access to "([^"]+)"/.exec(cause.message);
  return {
    reason: cause.message,
    hint: asked
      ? `Run deno with --allow-${asked[1]}=${asked[2]}`
      : "Run deno with the permission it names",
    transient: false,
    permission: true,
  };
}

/** The port each scheme connects to when its URL names none. */
const DEFAULT_PORTS: Record<string, string> = {
  "redis:": "6379",
  "rediss:": "6379",
  "sentinel:": "26379",
  "amqp:": "5672",
  "amqps:": "5671",
};

/**
 * Deno's refusal to look a host name up without the net permission for it:
 * node's `dns`, which ioredis and amqplib use, fails with
 * `getaddrinfo EPERM <host>`, which reads like a DNS failure, and Deno's
 * own connect with `NotCapable` (`Requires net access to "<host>:<port>"`).
 *
 * @example
 * ```ts
 * deniedLookup(new Error("getaddrinfo EPERM localhost"), "redis://localhost/0")?.hint;
 * // "Run with --allow-net=localhost:6379 ..."
 * ```
 *
 * @param cause the connection's error
 * @param url the URL it was opening (the port of a host it names)
 * @returns the reason and what to change, or `undefined` for another error
 */
export function deniedLookup(
  cause: unknown,
  url: string,
): Denied | undefined {
  const message = cause instanceof Error ? cause.message : String(cause);
  // Deno's own connect (Celeriac's Redis connections): `Requires net access to "host:port"`,
  // a host name (not an address: nothing was looked up).
  const denied = cause instanceof Deno.errors.NotCapable
    ? /net access to "([^":]*[a-z][^":]*)(?::\d+)?"/i.exec(message)?.[1]
    : undefined;
  const host = /getaddrinfo EPERM (\S+)/.exec(message)?.[1] ?? denied;
  if (!host) return undefined;
  let port = "";
  for (const one of url.split(";")) {
    try {
      const u = new URL(one);
      if (u.hostname === host) port = u.port || (DEFAULT_PORTS[u.protocol] ?? "");
    } catch {
      // not a URL: name the host alone
    }
    if (port) break;
  }
  const allow = port ? `${host}:${port}` : host;
  return {
    reason: `Deno denied the look-up of ${host}: no net permission for it (${message})`,
    hint: `Run with --allow-net=${allow} (the host as the URL names it)`,
    transient: false,
    permission: true,
  };
}
