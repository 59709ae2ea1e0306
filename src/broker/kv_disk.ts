/**
 * A KV file that cannot be written for now: its disk full, an I/O error, the
 * file or its file system read-only. Deno KV reports these as a plain
 * `TypeError` with SQLite's words ("database or disk is full", "disk I/O
 * error", "attempt to write a readonly database"), which the worker took for
 * a refusal of that one result and dropped it. They are turned here into a
 * transient {@link BrokerConnectionError} naming the file, so that they are
 * treated as an outage of a server: result stores are retried for
 * `outageRetryLimit`, deliveries kept, and a send fails with a coded error
 * saying what to free or fix.
 *
 * @module
 */

import { BrokerConnectionError } from "./errors.ts";

/** SQLite's words for SQLITE_FULL, SQLITE_IOERR and SQLITE_READONLY. */
const UNWRITABLE = /database or disk is full|disk I\/O error|readonly database/i;

/**
 * `err` as a transient {@link BrokerConnectionError} when it says the KV file
 * cannot be written for now (disk full, I/O error, read-only); any other
 * error as it is.
 *
 * @example
 * ```ts
 * import { unwritableKv } from "./kv_disk.ts";
 * const err = unwritableKv("/data/q.sqlite", new TypeError("database or disk is full"));
 * console.assert((err as Error).message.includes("Free disk space"));
 * ```
 *
 * @param path the database file
 * @param err what a Deno KV call threw
 * @returns the error to throw
 */
export function unwritableKv(path: string, err: unknown): unknown {
  if (!(err instanceof Error) || !UNWRITABLE.test(err.message)) return err;
  const full = /full/i.test(err.message);
  return new BrokerConnectionError(`kv://${path}`, err, {
    reason: `SQLite: ${err.message}`,
    hint: full
      ? `Free disk space on the file system of ${path}`
      : `Check the disk of ${path}, and make the file and its directory writable`,
    transient: true,
    verb: "write",
  });
}

/** The `Deno.Kv` calls whose failures are mapped (reads too: an I/O error). */
const MAPPED = new Set<PropertyKey>(["get", "getMany", "set", "delete", "enqueue"]);

/**
 * `kv` with the errors of its calls (and of its atomic operations' commits)
 * passed through {@link unwritableKv}.
 *
 * @example
 * ```ts
 * import { guardKv } from "./kv_disk.ts";
 * const kv = guardKv(await Deno.openKv(":memory:"), ":memory:");
 * await kv.set(["k"], 1);
 * kv.close();
 * ```
 *
 * @param kv the open database
 * @param path its file, named by the errors
 * @returns the same database, its errors mapped
 */
export function guardKv(kv: Deno.Kv, path: string): Deno.Kv {
  const map = (err: unknown) => {
    throw unwritableKv(path, err);
  };
  const calls = new Map<PropertyKey, unknown>();
  return new Proxy(kv, {
    get(target, prop) {
      // One set on the database itself (a test's stand-in) is used as it is.
      if (Object.hasOwn(target, prop)) return Reflect.get(target, prop, target);
      const known = calls.get(prop);
      if (known) return known;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let call: unknown;
      if (prop === "atomic") {
        call = () => {
          const op = (value as () => Deno.AtomicOperation).call(target);
          const commit = op.commit.bind(op);
          op.commit = () => commit().catch(map);
          return op;
        };
      } else if (MAPPED.has(prop)) {
        call = (...args: unknown[]) =>
          (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch(map);
      } else {
        call = value.bind(target);
      }
      calls.set(prop, call);
      return call;
    },
  });
}
