// deno-lint-ignore-file no-console
/**
 * `inspect`, `control`, `status` and `report`: remote control from the
 * command line, with Celery's command names. Human-readable output by
 * default, `--json` for scripts; exit 69 (EX_UNAVAILABLE, as Celery) when
 * no worker replies, 1 when a worker answers with an error.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { DEFAULT_BROKER_URL } from "../client/config.ts";
import { flattenReplies, type NodeReply, type ReplyOptions } from "../client/replies.ts";
import { closestName } from "./arg_errors.ts";
import { replyWait } from "./flag_numbers.ts";
import { table } from "./table.ts";
import { jsonText, PyFloat } from "../protocol/json.ts";
import { pyJsonLoadsFloats } from "../protocol/json_floats.ts";
import { parseKvUrl } from "../broker/kv_store.ts";
import { maskPassword } from "../broker/errors.ts";
import { EXIT_CODES, UsageError } from "./exit_codes.ts";
import { CELERIAC_VERSION } from "../client/version.ts";
import { reportText } from "../worker/inspect_replies.ts";
import {
  argumentsError,
  CASTS,
  CONTROL,
  CONTROL_COMMANDS,
  INSPECT,
  INSPECT_COMMANDS,
} from "./remote_commands.ts";

export { CONTROL_COMMANDS, INSPECT_COMMANDS };

/** Exit code when no worker replied (Celery's EX_UNAVAILABLE). */
export const NO_REPLY_EXIT: number = EXIT_CODES.unavailable;

/** What to print when `inspect` / `control` has no method, or one it does not know. */
function methodError(kind: string, method: string | undefined, known: readonly string[]): string {
  if (!method) return `${kind} needs a command: ${known.join(", ")}`;
  const guess = closestName(method, known);
  return `error: unknown ${kind} command "${method}"${
    guess ? ` (did you mean ${guess}?)` : ""
  }; one of: ${known.join(", ")}`;
}

/**
 * `--timeout` and `--destination` as the client takes them. A `-d` that names no node (`-d ""`,
 * `-d ","`, as `-d "$NODE"` with the variable unset gives) is refused: sent without a
 * destination, `control shutdown` would stop every worker on the broker.
 */
function replyOptions(values: Record<string, string | boolean | undefined>): ReplyOptions {
  const timeout = replyWait(values.timeout as string | undefined) ?? 1;
  // Whole floats stay floats: a reply's `"timeouts": [1.0, 2.0]` prints as Celery's prints it.
  const decode = pyJsonLoadsFloats;
  const text = values.destination as string | undefined;
  if (text === undefined) return { timeout, destination: undefined, decode };
  const destination = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (destination.length === 0) {
    throw new UsageError(
      `-d ${JSON.stringify(text)} names no node: give one or more node names (-d celeriac@web1,` +
        "celery@web2), or drop -d to reach every worker; nothing was sent",
    );
  }
  return { timeout, destination, decode };
}

/** A reply's `time_start` (seconds) as ISO text; `-` for none, or one that is no time. */
function startedAt(time: unknown): string {
  const v = time instanceof PyFloat ? time.value : time;
  return typeof v === "number" && Math.abs(v) <= 8.64e12 && v !== 0
    ? new Date(v * 1000).toISOString()
    : "-";
}

/**
 * A node's reply as the command line shows it: `ok` / `error` text, a table
 * for task lists, JSON for the rest. Replies come from any node on the
 * broker: whatever their shape, describing them does not throw.
 *
 * @example
 * ```ts
 * describeReply("ping", { ok: "pong" }); // "pong"
 * ```
 *
 * @param method the inspect or control command
 * @param reply the node's reply
 * @returns the text
 */
export function describeReply(method: string, reply: unknown): string {
  if (reply && typeof reply === "object" && !Array.isArray(reply)) {
    const r = reply as Record<string, unknown>;
    if (typeof r.ok === "string" && Object.keys(r).length === 1) return r.ok;
    if (typeof r.error === "string") return `error: ${r.error}`;
  }
  if (Array.isArray(reply)) {
    if (reply.length === 0) return `- empty -`;
    if (method === "active" || method === "reserved") {
      return table([
        ["ID", "NAME", "ARGS", "STARTED"],
        ...reply.map((t) => [t?.id, t?.name, jsonText(t?.args), startedAt(t?.time_start)]),
      ]);
    }
    if (method === "scheduled") {
      return table([
        ["ID", "NAME", "ETA"],
        ...reply.map((s) => [s?.request?.id, s?.request?.name, s?.eta]),
      ]);
    }
    return reply.map((x) => `* ${typeof x === "string" ? x : jsonText(x)}`).join("\n");
  }
  return jsonText(reply, 2);
}

function indent(text: string): string {
  return text.split("\n").map((l) => `    ${l}`).join("\n");
}

/**
 * Why no process but this one can use a broker URL: `kv://:memory:` is a
 * database in this process's memory, which a worker started elsewhere
 * (its own `kv://:memory:`) never sees.
 *
 * @example
 * ```ts
 * privateBroker("kv://:memory:"); // "kv://:memory: is private to this process: ..."
 * privateBroker("redis://127.0.0.1:6379/0"); // undefined
 * ```
 *
 * @param url the broker's URL
 * @returns the words, or `undefined` for a broker other processes can share
 */
export function privateBroker(url: string): string | undefined {
  if (!/^kv:/i.test(url)) return undefined;
  try {
    if (parseKvUrl(url).path !== ":memory:") return undefined;
  } catch {
    return undefined; // refused when the broker opens, with the reason
  }
  return "kv://:memory: is private to this process: no worker in another process can " +
    "see it (each has its own). Use a broker they share: kv://./file.db (the same file, " +
    "--unstable-kv), redis://… or amqp://… (--broker or CELERY_BROKER_URL)";
}

/**
 * Why no worker may be on the broker used when it is the default one, the
 * KV file under the current directory, and none was named: no `--app`, `-b`
 * or `CELERY_BROKER_URL` (`inspect ping` without `--app` asked there and said
 * only "No nodes replied"; `call` sent there and said only the task's id).
 * An app given with `--app` that sets no broker names the default itself:
 * its workers use it too, so nothing is said then.
 *
 * @example
 * ```ts
 * defaultBroker("kv://.celeriac/celeriac.sqlite", {}); // "Asked on the default broker, ..."
 * defaultBroker("kv://.celeriac/celeriac.sqlite", {}, "warning: sent 5c0e… to"); // "warning: sent …"
 * defaultBroker("kv://.celeriac/celeriac.sqlite", { app: "./tasks.ts" }); // undefined
 * defaultBroker("redis://127.0.0.1:6379/0", {}); // undefined
 * ```
 *
 * @param url the broker's URL
 * @param flags the command line's `--app` and `-b` (`undefined` when not given)
 * @param done what was done there, the words before "the default broker"; default `Asked on`
 * @returns the words, or `undefined` for a broker that was named
 */
export function defaultBroker(
  url: string,
  flags: { app?: unknown; broker?: unknown },
  done = "Asked on",
): string | undefined {
  if (url !== DEFAULT_BROKER_URL || flags.app !== undefined || flags.broker !== undefined) {
    return undefined;
  }
  return `${done} the default broker, ${url} under ${Deno.cwd()}: neither --app, -b nor ` +
    "CELERY_BROKER_URL named one. Name your workers' broker: --app ./tasks.ts (the app they " +
    "run) or -b redis://…";
}

/**
 * Which broker a command that got no reply asked, and why no worker could
 * reply there when that is known (private to this process, or the default
 * one): the broker's URL, its password masked, always (`status -b URL`
 * said only "No nodes replied" for a URL that was given, so a typo in it
 * looked like workers down).
 *
 * @example
 * ```ts
 * noReplyWords("redis://:pw@10.0.0.5:6379/0", { broker: "…" }); // "Asked on redis://:***@10.0.0.5:6379/0."
 * noReplyWords("kv://:memory:", {}); // "kv://:memory: is private to this process: …"
 * ```
 *
 * @param url the broker's URL
 * @param flags the command line's `--app` and `-b` (`undefined` when not given)
 * @returns the words, one line
 */
export function noReplyWords(url: string, flags: { app?: unknown; broker?: unknown }): string {
  return privateBroker(url) ?? defaultBroker(url, flags) ?? `Asked on ${maskPassword(url)}.`;
}

/** Celery's words for no reply, and the broker asked (why none could reply there, when known). */
function noNodesReplied(app: Celery, values: Record<string, unknown>): void {
  console.error("Error: No nodes replied within time constraint.");
  console.error(noReplyWords(app.config.broker, values));
}

/**
 * Print the replies; the exit code. `--json` writes Celery 5.2's shapes: `inspect` one object by
 * node (`{"n1": …, "n2": …}`), `control` the list of replies in the order they came
 * (`[{"n1": …}, {"n2": …}]`).
 */
function print(
  app: Celery,
  values: Record<string, unknown>,
  method: string,
  replies: NodeReply[],
  json: "object" | "list" | false,
  kind: "inspect" | "control" = "control",
): number {
  const merged = flattenReplies(replies);
  if (json) console.log(jsonText(json === "list" ? replies : merged));
  const asJson = json !== false;
  if (replies.length === 0) {
    noNodesReplied(app, values);
    return NO_REPLY_EXIT;
  }
  let failed = false;
  for (const [node, reply] of Object.entries(merged)) {
    const error = reply !== null && typeof reply === "object" && "error" in reply;
    failed ||= error;
    if (asJson) continue;
    console.log(`->  ${node}: ${error ? "ERROR" : "OK"}`);
    console.log(indent(describeReply(method, reply)));
  }
  const n = Object.keys(merged).length;
  // `inspect` says "online" as Celery's does; Celery's `control` ends with its replies.
  const what = kind === "inspect" ? "online" : "replied";
  if (!asJson) console.log(`\n${n} node${n === 1 ? "" : "s"} ${what}.`);
  return failed ? EXIT_CODES.failed : EXIT_CODES.ok;
}

/**
 * `inspect CMD [args] [--destination a,b] [--timeout S] [--json]`.
 *
 * @param app the app
 * @param positionals `[cmd, ...args]`
 * @param values parsed flags
 * @returns exit code
 */
export async function runInspect(
  app: Celery,
  positionals: string[],
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const [method, ...rest] = positionals;
  const args = method && Object.hasOwn(INSPECT, method) ? INSPECT[method] : undefined;
  if (!args) {
    console.error(methodError("inspect", method, INSPECT_COMMANDS));
    return EXIT_CODES.usage;
  }
  const misfit = argumentsError("inspect", method, rest);
  if (misfit) {
    console.error(misfit);
    return EXIT_CODES.usage;
  }
  const replies = await app.control.call(method, args(rest), replyOptions(values));
  return print(app, values, method, replies, values.json === true && "object", "inspect");
}

/**
 * `control CMD [args] [--destination a,b] [--timeout S] [--json]`.
 *
 * @param app the app
 * @param positionals `[cmd, ...args]`
 * @param values parsed flags
 * @returns exit code
 */
export async function runControl(
  app: Celery,
  positionals: string[],
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const [method, ...rest] = positionals;
  const args = method && Object.hasOwn(CONTROL, method) ? CONTROL[method] : undefined;
  if (!args) {
    console.error(methodError("control", method, CONTROL_COMMANDS));
    return EXIT_CODES.usage;
  }
  const misfit = argumentsError("control", method, rest);
  if (misfit) {
    console.error(misfit);
    return EXIT_CODES.usage;
  }
  const options = replyOptions(values);
  if (CASTS.has(method)) {
    await app.control.broadcast(method, args(rest), { destination: options.destination });
    // --json: the empty list of replies (workers stop without replying), for a script to parse.
    console.log(values.json ? "[]" : `${method} sent.`);
    return 0;
  }
  if (!REVOKES.has(method)) {
    return print(
      app,
      values,
      method,
      await app.control.call(method, args(rest), options),
      values.json === true && "list",
    );
  }
  const replies = await revoke(app, args(rest), options);
  if (replies.length === 0) {
    console.error(
      options.destination
        ? `No node of -d ${options.destination.join(",")} answered: the revoke reached no ` +
          "worker and is not stored (without -d it is stored in the broker for 3 hours)."
        : "The revoke is stored in the broker for 3 hours: a worker that starts (or consumes) " +
          "within them skips the task.",
    );
  }
  return print(app, values, method, replies, values.json === true && "list");
}

/** Commands sent through `app.control.revoke`, which also remembers the ids in the broker. */
const REVOKES = new Set(["revoke", "terminate"]);

/**
 * Revoke as the client does: remembered for workers that start later, even
 * if none answers (with a destination, once a named node has it).
 */
function revoke(
  app: Celery,
  args: Record<string, unknown>,
  options: ReplyOptions,
): Promise<NodeReply[]> {
  return app.control.revoke(args.task_id as string[], {
    terminate: args.terminate as boolean,
    signal: args.signal as string,
    destination: options.destination,
    timeout: options.timeout,
    reply: true,
  });
}

/**
 * `status`: the workers that answer a ping.
 *
 * @param app the app
 * @param values parsed flags
 * @returns exit code
 */
export async function runStatus(
  app: Celery,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const replies = await app.control.ping(replyOptions(values));
  const merged = flattenReplies(replies);
  const nodes = Object.keys(merged).sort();
  // As `celery status`: `{"node": {"ok": "pong"}, ...}` with --json, else `->  node: OK` lines.
  if (values.json) {
    console.log(jsonText(Object.fromEntries(nodes.map((n) => [n, merged[n]]))));
  } else {
    for (const n of nodes) console.log(`->  ${n}: OK`);
    if (nodes.length) console.log(`\n${nodes.length} node${nodes.length === 1 ? "" : "s"} online.`);
  }
  if (nodes.length === 0) {
    noNodesReplied(app, values);
    return NO_REPLY_EXIT;
  }
  return 0;
}

/**
 * `report`: this command's own software, platform and settings, as
 * `celery report` prints them, then each worker's that answers (`inspect
 * report`'s; a reply that is no report, shown as `inspect` shows it). Exits 0 when no worker answers, as `celery report`, which
 * asks none; `--json` prints the workers' replies alone.
 *
 * @param app the app
 * @param values parsed flags
 * @returns exit code
 */
export async function runReport(
  app: Celery,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  if (!values.json) console.log(reportText(app.config, CELERIAC_VERSION));
  const replies = await app.control.inspect(replyOptions(values)).report();
  if (values.json) console.log(jsonText(replies));
  for (const [node, r] of Object.entries(replies as Record<string, unknown>)) {
    if (values.json) continue;
    // A report is `{"ok": text}`; any other reply (null, an error, no `ok`) is shown as inspect shows it.
    const ok = r !== null && typeof r === "object" &&
      typeof (r as { ok?: unknown }).ok === "string";
    console.log(
      ok
        ? `->  ${node}:${(r as { ok: string }).ok}`
        : `->  ${node}:\n${indent(describeReply("report", r))}`,
    );
  }
  if (Object.keys(replies).length === 0) {
    console.error(
      "No worker replied: the report above is this command's own. " +
        noReplyWords(app.config.broker, values),
    );
  }
  return 0;
}
