/**
 * The URL flags (`-b, --broker`, `--backend` or Celery's `--result-backend`, `--beat-store`), checked
 * before anything connects: empty, of no scheme Celeriac can use, or one its
 * transport's parser refuses, is a usage error that names the flag.
 *
 * @module
 */

import { urlSchemeProblem } from "../client/transports.ts";
import { BrokerConnectionError } from "../broker/errors.ts";
import { rpcAmqpUrl } from "../backend/rpc_url.ts";
import { parseAmqpUrl } from "../broker/amqp_url.ts";
import { canonicalBrokerUrl } from "../broker/amqp_aliases.ts";
import { parseKvUrl } from "../broker/kv_store.ts";
import { parseRedisUrl } from "../broker/redis_url.ts";
import { UsageError } from "./exit_codes.ts";

/** What each URL flag takes, an example of it, and what leaving it out gives. */
const URL_FLAGS = {
  "--broker": {
    kind: "broker",
    example: "-b redis://127.0.0.1:6379/0",
    short: "-b",
    otherwise: "the app's broker, CELERY_BROKER_URL or kv://",
  },
  "--backend": {
    kind: "result backend",
    example: "--backend redis://127.0.0.1:6379/0",
    short: "--backend",
    otherwise: "the app's backend or CELERY_RESULT_BACKEND",
  },
  "--result-backend": {
    kind: "result backend",
    example: "--result-backend redis://127.0.0.1:6379/0",
    short: "--result-backend",
    otherwise: "the app's backend or CELERY_RESULT_BACKEND",
  },
  "--beat-store": {
    kind: "beat store",
    example: "--beat-store redis://127.0.0.1:6379/0",
    short: "--beat-store",
    otherwise: "the broker (a Redis or KV one)",
  },
} as const;

/**
 * Refuse a URL flag that is empty (as `-b "$BROKER"` gives with the variable
 * unset: the default would be used in its place), of no scheme its kind
 * supports, or that its transport's parser refuses (`redis://host/abc`);
 * `undefined` (the flag absent) passes.
 *
 * @example
 * ```ts
 * checkUrlFlag("--broker", "redis://127.0.0.1:6379/0"); // throws for "", "ftp://x" and "redis://h/abc"
 * ```
 *
 * @param flag the flag's long name
 * @param url its value
 * @throws {UsageError} naming the flag, saying what to give
 */
export function checkUrlFlag(flag: keyof typeof URL_FLAGS, url: string | undefined): void {
  if (url === undefined) return;
  const { kind, example, short, otherwise } = URL_FLAGS[flag];
  if (url.trim() === "") {
    throw new UsageError(
      `${flag} is empty: give a ${kind} URL (${example}), or leave ${short} out for ${otherwise}`,
    );
  }
  const problem = urlSchemeProblem(kind, url);
  if (problem) throw new UsageError(`${flag}: ${problem}`);
  const scheme = url.slice(0, url.indexOf(":")).toLowerCase();
  try {
    if (Object.hasOwn(PARSERS, scheme)) PARSERS[scheme](url);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The parsers of the URLs a flag may name, run before anything connects: a
 * database that is no number (`redis://host/abc`), a port out of range, an
 * option of a wrong value (`amqp://…?heartbeat=abc`, `kv://q.db?visibility=3`)
 * were the worker's exit 1 after its banner, or `call`'s 70.
 */
const PARSERS: Record<string, (url: string) => unknown> = {
  redis: parseRedisUrl,
  rediss: parseRedisUrl,
  sentinel: parseRedisUrl,
  "redis+cluster": parseRedisUrl,
  "rediss+cluster": parseRedisUrl,
  amqp: parseAmqpUrl,
  amqps: parseAmqpUrl,
  pyamqp: (url) => parseAmqpUrl(canonicalBrokerUrl(url)),
  librabbitmq: (url) => parseAmqpUrl(canonicalBrokerUrl(url)),
  kv: parseKvUrl,
};

/**
 * The broker and result backend URLs of the command line, checked (see
 * {@link checkUrlFlag}): `--result-backend`, Celery's name, is `--backend`.
 *
 * @example
 * ```ts
 * appUrlFlags({ "result-backend": "redis://127.0.0.1:6379/1" }); // { backend: "redis://…/1" }
 * ```
 *
 * @param values the parsed flags
 * @returns the URLs given, `undefined` for those not
 * @throws {UsageError} for a URL {@link checkUrlFlag} refuses, `--backend` and
 *   `--result-backend` with different URLs, or `--backend rpc://` with a `-b` that is no
 *   `amqp://` broker
 */
export function appUrlFlags(
  values: { broker?: string; backend?: string; "result-backend"?: string },
): { broker?: string; backend?: string } {
  const { broker, backend, "result-backend": resultBackend } = values;
  if (backend !== undefined && resultBackend !== undefined && backend !== resultBackend) {
    throw new UsageError("--backend and --result-backend are the same setting: give one of them");
  }
  const backendFlag = backend === undefined ? "--result-backend" : "--backend";
  checkUrlFlag("--broker", broker);
  checkUrlFlag(backendFlag, backend ?? resultBackend);
  const results = backend ?? resultBackend;
  if (broker !== undefined && results !== undefined && /^rpc:/i.test(results)) {
    // Both given here: an rpc:// backend that names no server needs an amqp:// broker.
    try {
      rpcAmqpUrl(results, canonicalBrokerUrl(broker));
    } catch (err) {
      throw new UsageError(`${backendFlag} with -b: ${(err as Error).message}`, { cause: err });
    }
  }
  return { broker, backend: results };
}

/** Where a URL given on the command line came from, as a connection error says it. */
const FLAG_SOURCES = {
  broker: "the command line's -b/--broker",
  backend: "the command line's --backend",
} as const;

/**
 * A connection error again, saying that its URL came from the command line when it did:
 * the app only knows its `broker` / `backend` option was set (`-b` sets it), so every command
 * (`call`, `status`, `purge`, `events`, ..., a wrong password as an outage) names the same flag.
 * Other errors, and those of a URL the flags did not set, are returned as they are.
 *
 * @example
 * ```ts ignore
 * throw flagUrlSource(err, app.urlSources, { broker: "redis://127.0.0.1:1/0" });
 * // Cannot connect to redis://127.0.0.1:1/0: … (set by the command line's -b/--broker)
 * ```
 *
 * @param err what the command threw
 * @param sources the app's URL sources (`app.urlSources`)
 * @param flags the URLs the command line gave ({@link appUrlFlags})
 * @returns the error to report
 */
export function flagUrlSource(
  err: unknown,
  sources: { broker: string; backend: string },
  flags: { broker?: string; backend?: string },
): unknown {
  if (!(err instanceof BrokerConnectionError) || err.source === undefined) return err;
  const which = (["broker", "backend"] as const).find((k) =>
    flags[k] !== undefined && err.source === sources[k]
  );
  if (which === undefined) return err;
  return new BrokerConnectionError(err.url, err.cause, {
    reason: err.reason,
    hint: err.hint,
    transient: err.transient,
    source: FLAG_SOURCES[which],
    publishTries: err.publishTries,
  });
}
