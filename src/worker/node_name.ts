/**
 * Worker node names as Celery builds them from `-n` (celery.utils.nodenames):
 * a name without `@` is a host name (`-n web1` is `celeriac@web1`), and
 * `%h` (host name), `%n` (its first label), `%d` (its domain), `%i` / `%I`
 * (the process index: `0` and nothing in the worker's one process) and
 * `%%` (a `%`) are expanded. Log file paths take the node's parts too
 * (`--logfile /var/log/celeriac/%n%I.log`, Celery's `node_format`): `%n`
 * is then the node's name before `@`, `%h` its host, `%p` the whole name.
 *
 * @module
 */

import { hostName } from "../client/runtime.ts";

/** The name before `@` when `-n` has none (Celery's is `celery`). */
export const DEFAULT_NODE_NAME = "celeriac";

/**
 * Replace each `%x` with `keys[x]`; `%%` is a `%`, and a `%` before
 * anything but a letter, digit or `_` stays (as in Celery).
 *
 * @throws {RangeError} for a `%x` with no meaning, naming it
 */
function expand(template: string, keys: Record<string, string>, what: string): string {
  return template.replace(/%(%|[A-Za-z0-9_])/g, (whole, key: string) => {
    if (key === "%") return "%";
    if (Object.hasOwn(keys, key)) return keys[key];
    const known = Object.keys(keys).map((k) => `%${k}`).join(", ");
    throw new RangeError(
      `${what} "${template}" has ${whole}, which means nothing: use ${known}, or %% for a % sign`,
    );
  });
}

/** `%h`, `%n`, `%d`, `%i`, `%I` of a host name. */
function hostKeys(host: string): Record<string, string> {
  const dot = host.indexOf(".");
  return {
    h: host,
    n: dot < 0 ? host : host.slice(0, dot),
    d: dot < 0 ? "" : host.slice(dot + 1),
    i: "0",
    I: "",
  };
}

/**
 * The node name a worker started with `-n template` has (Celery's
 * `host_format(default_nodename(template))`).
 *
 * @example
 * ```ts
 * import { nodeName } from "./node_name.ts";
 * nodeName("w1@%h", "web1.example.com"); // "w1@web1.example.com"
 * nodeName("w1@%n", "web1.example.com"); // "w1@web1"
 * nodeName("web1", "ignored"); // "celeriac@web1"
 * nodeName(undefined, "web1"); // "celeriac@web1"
 * ```
 *
 * @param template `-n`'s value; default `celeriac@%h`
 * @param host this machine's host name
 * @returns the node name
 * @throws {RangeError} for a `%` sequence Celery does not expand
 */
export function nodeName(template: string | undefined, host: string = hostName()): string {
  const at = (template ?? "").indexOf("@");
  const name = at < 0 ? "" : template!.slice(0, at);
  const rest = at < 0 ? (template ?? "") : template!.slice(at + 1);
  const full = `${name || DEFAULT_NODE_NAME}@${rest || "%h"}`;
  return expand(full, hostKeys(host), "The node name (-n)");
}

/**
 * A path (a log file's) with the node's parts expanded, as Celery's
 * `node_format`: `%p` the node name, `%n` its name before `@`, `%h` its
 * host, `%d` that host's domain, `%i` `0`, `%I` nothing, `%%` a `%`.
 *
 * @example
 * ```ts
 * import { nodePath } from "./node_name.ts";
 * nodePath("/var/log/%n%I.log", "w1@web1"); // "/var/log/w1.log"
 * ```
 *
 * @param path the path with `%` sequences
 * @param node the worker's node name
 * @returns the path for that node
 * @throws {RangeError} for a `%` sequence with no meaning
 */
export function nodePath(path: string, node: string): string {
  const at = node.indexOf("@");
  const host = at < 0 ? node : node.slice(at + 1);
  const name = at < 0 ? DEFAULT_NODE_NAME : node.slice(0, at);
  return expand(path, { ...hostKeys(host), n: name, p: node }, "The path");
}
