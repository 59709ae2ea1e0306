/**
 * The `inspect` and `control` commands the command line sends, with
 * Celery's names: the arguments each one's positionals become (as Celery's
 * command line builds them), how many it takes, and the check of those
 * before anything is sent. Pure.
 *
 * @module
 */

import { PyFloat } from "../protocol/json.ts";
import { isSignalName } from "../protocol/signal_names.ts";
import { yesNo } from "../protocol/yes_no.ts";
import { UsageError } from "./exit_codes.ts";

/** A yes/no argument as Celery's `strtobool` reads it (`1`, `yes`, `True`, `off`…); absent: false. */
function truthy(word: string | undefined, what: string): boolean {
  if (word === undefined) return false;
  const value = yesNo(word);
  if (value === undefined) {
    throw new UsageError(
      `${what} takes true or false (also yes/no, on/off, 1/0, as Celery), got "${word}"`,
    );
  }
  return value;
}

/** The given ones of Celery's integer arguments `names`, by name (`objgraph Request 50`). */
function ints(names: readonly string[], given: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  names.forEach((name, i) => {
    if (given[i] !== undefined) out[name] = Number(given[i]);
  });
  return out;
}

/**
 * Inspect commands and the arguments their positionals become. `objgraph`,
 * `memsample` and `memdump` are Celery's, for its workers (a Celeriac worker
 * answers them with an error).
 *
 * @example
 * ```ts
 * import { INSPECT } from "./remote_commands.ts";
 * INSPECT.query_task(["a", "b"]); // { ids: ["a", "b"] }
 * ```
 */
export const INSPECT: Record<string, (p: string[]) => Record<string, unknown>> = {
  active: () => ({ safe: null }),
  reserved: () => ({}),
  scheduled: () => ({}),
  revoked: () => ({}),
  registered: (items) => ({ taskinfoitems: items }),
  stats: () => ({}),
  active_queues: () => ({}),
  query_task: (p) => ({ ids: p }),
  conf: ([word]) => ({ with_defaults: word === "--with-defaults" || truthy(word, "inspect conf") }),
  report: () => ({}),
  clock: () => ({}),
  ping: () => ({}),
  objgraph: ([type, ...rest]) => ({
    ...(type === undefined ? {} : { type }),
    ...ints(["num", "max_depth"], rest),
  }),
  memsample: () => ({}),
  memdump: (p) => ints(["samples"], p),
};

/**
 * Control commands and the arguments their positionals become. `election`
 * and `pool_restart` are Celery's, for its workers (a Celeriac worker
 * answers them with an error).
 *
 * @example
 * ```ts
 * import { CONTROL } from "./remote_commands.ts";
 * CONTROL.cancel_consumer(["emails"]); // { queue: "emails" }
 * ```
 */
export const CONTROL: Record<string, (p: string[]) => Record<string, unknown>> = {
  enable_events: () => ({}),
  disable_events: () => ({}),
  heartbeat: () => ({}),
  shutdown: () => ({}),
  rate_limit: ([task, rate]) => ({ task_name: task, rate_limit: rate }),
  // Celery's CLI sends the limits as floats (`2.0`), which its workers show as such.
  time_limit: ([task, soft, hard]) => ({
    task_name: task,
    soft: soft === undefined ? null : new PyFloat(Number(soft)),
    hard: hard === undefined ? null : new PyFloat(Number(hard)),
  }),
  revoke: (ids) => ({ task_id: ids, terminate: false, signal: "SIGTERM" }),
  terminate: ([signal, ...ids]) => ({ task_id: ids, terminate: true, signal }),
  add_consumer: ([queue, exchange, type, key]) => ({
    queue,
    exchange: exchange ?? null,
    exchange_type: type ?? "direct",
    routing_key: key ?? null,
  }),
  cancel_consumer: ([queue]) => ({ queue }),
  pool_grow: ([n]) => ({ n: Number(n ?? 1) }),
  pool_shrink: ([n]) => ({ n: Number(n ?? 1) }),
  autoscale: ([max, min]) => ({ max: wholeNumber(max, "max"), min: wholeNumber(min, "min") }),
  election: () => ({}),
  pool_restart: () => ({}),
};

/**
 * The arguments a command takes: fewest, most, and how to write them. A command sent with a
 * missing argument would do something else (`rate_limit TASK` without a rate removes the limit,
 * `time_limit TASK` both limits), so it is refused before anything is sent.
 */
const ARGUMENTS: Record<string, readonly [number, number, string]> = {
  query_task: [1, Infinity, "ID [ID ...]"],
  rate_limit: [2, 2, "TASK RATE (10/s, 5/m, ...; 0 removes the limit)"],
  time_limit: [2, 3, "TASK SOFT [HARD] (seconds)"],
  revoke: [1, Infinity, "ID [ID ...]"],
  terminate: [2, Infinity, "SIGNAL ID [ID ...]"],
  add_consumer: [1, 4, "QUEUE [EXCHANGE [TYPE [ROUTING_KEY]]]"],
  cancel_consumer: [1, 1, "QUEUE"],
  pool_grow: [0, 1, "[N]"],
  pool_shrink: [0, 1, "[N]"],
  autoscale: [0, 2, "[MAX [MIN]]"],
  objgraph: [0, 3, "[OBJECT_TYPE=Request] [NUM=200 [MAX_DEPTH=10]]"],
  memsample: [0, 0, ""],
  memdump: [0, 1, "[N_SAMPLES=10]"],
};

/**
 * Why these arguments do not fit the command (`undefined` when they do).
 *
 * @example
 * ```ts
 * import { argumentsError } from "./remote_commands.ts";
 * argumentsError("control", "cancel_consumer", []); // "error: control cancel_consumer: takes QUEUE; got none"
 * ```
 *
 * @param kind `inspect` or `control`
 * @param method the command
 * @param rest its arguments
 * @returns the message, or `undefined`
 */
export function argumentsError(
  kind: string,
  method: string,
  rest: readonly string[],
): string | undefined {
  const [fewest, most, usage] = ARGUMENTS[method] ?? [0, kind === "inspect" ? Infinity : 0, ""];
  const pool = method === "pool_grow" || method === "pool_shrink";
  const numbers = method === "time_limit"
    ? rest.slice(1)
    : pool || method === "memdump"
    ? rest
    : method === "objgraph"
    ? rest.slice(1)
    : [];
  if (method === "terminate" && rest.length >= 2 && !isSignalName(rest[0])) {
    return `error: control terminate: "${rest[0]}" is no signal: give SIGNAL ID [ID ...] with a ` +
      "signal name in upper case, as SIGTERM, SIGKILL or KILL; nothing was sent";
  }
  const bad = numbers.find((n) =>
    pool ? !/^[1-9]\d*$/.test(n) : !Number.isFinite(Number(n)) || n.trim() === ""
  );
  if (rest.length >= fewest && rest.length <= most && bad === undefined) return undefined;
  const what = bad !== undefined
    ? `"${bad}" is not ${pool ? "a whole number above 0" : "a number"}`
    : usage
    ? `takes ${usage}`
    : "takes no arguments";
  return `error: ${kind} ${method}: ${what}; got ${rest.length ? rest.join(" ") : "none"}`;
}

/** `autoscale MAX [MIN]`: an absent bound is null (the worker keeps it). */
function wholeNumber(text: string | undefined, what: string): number | null {
  if (text === undefined) return null;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(
      `control autoscale needs MAX [MIN] as whole numbers, got ${what} "${text}"`,
    );
  }
  return n;
}

/**
 * Commands whose reply is a cast: nothing comes back (the worker stops first).
 *
 * @example
 * ```ts
 * import { CASTS } from "./remote_commands.ts";
 * CASTS.has("shutdown"); // true
 * ```
 */
export const CASTS: ReadonlySet<string> = new Set(["shutdown"]);

/**
 * The names `inspect` accepts.
 *
 * @example
 * ```ts
 * import { INSPECT_COMMANDS } from "./remote_commands.ts";
 * INSPECT_COMMANDS.includes("stats"); // true
 * ```
 */
export const INSPECT_COMMANDS: readonly string[] = Object.keys(INSPECT);
/**
 * The names `control` accepts.
 *
 * @example
 * ```ts
 * import { CONTROL_COMMANDS } from "./remote_commands.ts";
 * CONTROL_COMMANDS.includes("pool_grow"); // true
 * ```
 */
export const CONTROL_COMMANDS: readonly string[] = Object.keys(CONTROL);
