/**
 * The dashboard's JSON API: reads (`GET /api/...`) answer from the view
 * model, the broker and inspect replies; actions (`POST /api/...`) reach
 * workers through remote control and the broker. Every action needs the
 * CSRF token of `GET /api/session` in `X-CSRF-Token` and a JSON body.
 *
 * @module
 */

import type { BrokerStatus } from "./broker_health.ts";
import type { Celery } from "../client/app.ts";
import type { NodeReply } from "../client/replies.ts";
import { safeEqual } from "./auth.ts";
import { HttpError } from "./errors.ts";
import { jsonBody } from "./request_body.ts";
import { maskEntry, withReprs } from "./inspect_entries.ts";
import type { InspectCommand, Inspector } from "./feed.ts";
import { READY_STATES, type TaskRecord } from "./task_record.ts";
import { retryQueues, retryTask } from "./task_retry.ts";
import type { ViewModel } from "./view_model.ts";
import type { WorkerRecord } from "./worker_table.ts";
import { isSignalName } from "../protocol/signal_names.ts";
import { WORKER_ACTIONS } from "./http_methods.ts";

/** What the API works with. */
export interface ApiContext {
  /** The app: broker, remote control, sending tasks. */
  readonly app: Celery;
  /** The view model. */
  readonly model: ViewModel;
  /** Inspect replies, when the client offers them. */
  readonly inspector?: Inspector;
  /** Refuse every action. */
  readonly readOnly: boolean;
  /** Mask args, kwargs, results and exception messages. */
  readonly hideArgs: boolean;
  /** The token actions must carry. */
  readonly csrfToken: string;
  /** Queue depths (cached by the server). */
  queueDepths(): Promise<Map<string, number>>;
  /** Drop the cached depths: an action just changed them (purge, requeue). */
  queuesChanged(): void;
  /** Software version shown in the UI. */
  readonly version: string;
  /** Whether the dashboard reaches the broker (see broker_health.ts). */
  readonly broker: () => BrokerStatus;
}

/**
 * The signals a terminate may name: what Celery's `signum()` turns into a
 * signal number (upper case, `SIG` optional). A Python worker that gets
 * another still marks the task revoked but terminates nothing.
 */
/** Seconds a worker action waits for the worker's reply. */
const REPLY_TIMEOUT_S = 2;

/** Shown instead of args, kwargs, results and exception messages with `hideArgs`. */
export const MASK = "•••";

/**
 * An exception's repr without its arguments, which often hold the task's
 * (`ValueError('bad card 4111…')` becomes `ValueError(•••)`).
 */
function maskException(repr: string): string {
  const type = /^([\w.]+)\(/.exec(repr)?.[1];
  return type ? `${type}(${MASK})` : MASK;
}

/**
 * A traceback with its frames kept (Python's `File "…", line N, in f` and
 * JavaScript's `at f (…)` lines, and Python's heading) and every other line
 * (messages, source lines) masked, a run of them as one.
 */
function maskTraceback(text: string): string {
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    const frame = /^\s+(File "|at )/.test(line) || line === "Traceback (most recent call last):";
    if (frame) kept.push(line);
    else if (kept.at(-1) !== MASK) kept.push(MASK);
  }
  return kept.join("\n");
}

/**
 * A parked message's reason with `hideArgs`: a malformed message's reason can quote a value of
 * its body (`Task args must be an array, got "…"`), so its quoted strings and the value after
 * `got` are masked; other reasons (`unregistered task "x"`) are kept.
 */
function maskReason(reason: string): string {
  if (!reason.startsWith("malformed task message:")) return reason;
  return reason.replace(/"(?:[^"\\]|\\.)*"/g, MASK).replace(
    /\bgot (?!•••|an? |null)[^\s,;]+/g,
    `got ${MASK}`,
  );
}

/**
 * A task as the API returns it, masked if asked: args, kwargs and result,
 * and the exception's message and traceback text (only its frames show).
 *
 * @param t the record
 * @param hide mask args, kwargs, result and exception text
 * @returns a plain object
 */
export function taskJson(t: TaskRecord, hide: boolean): TaskRecord {
  if (!hide) return t;
  return {
    ...t,
    args: t.args === null ? null : MASK,
    kwargs: t.kwargs === null ? null : MASK,
    result: t.result === null ? null : MASK,
    exception: t.exception === null ? null : maskException(t.exception),
    traceback: t.traceback === null ? null : maskTraceback(t.traceback),
  };
}

function intParam(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined || value === null || value === "") return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(400, "bad_param", `${name} must be a whole number ${min}..${max}`);
  }
  return n;
}

function stringParam(b: Record<string, unknown>, name: string): string {
  const v = b[name];
  if (typeof v !== "string" || v.trim() === "") {
    throw new HttpError(400, "bad_param", `${name} is required (a non-empty string)`);
  }
  return v;
}

function knownTask(ctx: ApiContext, id: string): TaskRecord {
  const t = ctx.model.tasks.get(id);
  if (!t) {
    throw new HttpError(
      404,
      "unknown_task",
      `No task ${id} is known to the dashboard (it keeps the last tasks seen in events)`,
    );
  }
  return t;
}

function knownWorker(ctx: ApiContext, name: string): WorkerRecord {
  const w = ctx.model.workers.get(name);
  if (!w) throw new HttpError(404, "unknown_worker", `No worker ${name} has sent events`);
  return w;
}

async function inspectAll(
  ctx: ApiContext,
  hostname: string,
): Promise<Record<string, unknown> | null> {
  if (!ctx.inspector) return null;
  const commands: InspectCommand[] = ["active", "reserved", "scheduled", "registered", "stats"];
  const replies = await Promise.all(
    commands.map((c) =>
      Promise.resolve().then(() => ctx.inspector!(c, { destination: [hostname], timeout: 1 })).then(
        (r) => r[hostname] ?? null,
        (err) => ({ error: (err as Error).message }),
      )
    ),
  );
  const entries = (list: unknown) =>
    Array.isArray(list)
      ? list.map((e) => ctx.hideArgs ? maskEntry(withReprs(e), MASK) : withReprs(e))
      : list;
  return Object.fromEntries(
    commands.map((
      c,
      i,
    ) => [c, c === "registered" || c === "stats" ? replies[i] : entries(replies[i])]),
  );
}

/** At most this many steps of a workflow are drawn. */
const MAX_WORKFLOW = 50;

/**
 * The tasks of a workflow from its root, parents before children (a chain
 * is a line of steps, a chord's header a fan), with their depth; tasks of
 * the workflow linked to no parent (a chord's header sent by a client)
 * follow at depth 1.
 */
function workflow(
  ctx: ApiContext,
  root: string,
): { uuid: string; name: string | null; state: string | null; depth: number }[] {
  const out: { uuid: string; name: string | null; state: string | null; depth: number }[] = [];
  const seen = new Set<string>();
  const walk = (start: string, startDepth: number) => {
    const queue: [string, number][] = [[start, startDepth]];
    while (queue.length && out.length < MAX_WORKFLOW) {
      const [id, depth] = queue.shift()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const t = ctx.model.tasks.get(id);
      out.push({ uuid: id, name: t?.name ?? null, state: t?.state ?? null, depth });
      for (const c of ctx.model.tasks.children(id)) queue.push([c, depth + 1]);
    }
  };
  walk(root, 0);
  for (const id of ctx.model.tasks.members(root)) {
    if (!seen.has(id) && ctx.model.tasks.get(id)?.parentId == null) walk(id, 1);
  }
  return out;
}

/**
 * Answer a GET under `/api/`.
 *
 * @param ctx the context
 * @param path the path after `/api/`
 * @param params query parameters
 * @returns the JSON value
 * @throws {HttpError} 404 for unknown routes, tasks and workers; 400 for bad parameters
 */
export async function apiGet(
  ctx: ApiContext,
  path: string[],
  params: URLSearchParams,
): Promise<unknown> {
  const now = Date.now() / 1000;
  const [head, id] = path;
  if (head === "session" && path.length === 1) {
    return {
      csrfToken: ctx.csrfToken,
      readOnly: ctx.readOnly,
      hideArgs: ctx.hideArgs,
      version: ctx.version,
      inspect: ctx.inspector !== undefined,
    };
  }
  if (head === "overview" && path.length === 1) {
    const workers = ctx.model.workers.list(now);
    return {
      states: ctx.model.tasks.countByState(),
      tasksHeld: ctx.model.tasks.size,
      events: ctx.model.eventCount,
      workersOnline: workers.filter((w) => w.online).length,
      workersTotal: workers.length,
      broker: ctx.broker(),
      series: ctx.model.throughput.series(now, {
        window: intParam(params.get("window"), "window", 10, 3600, 300),
        step: intParam(params.get("step"), "step", 1, 60, 5),
      }),
    };
  }
  if (head === "workers") {
    if (path.length === 1) return { workers: ctx.model.workers.list(now) };
    if (path.length === 2) {
      const w = knownWorker(ctx, id);
      const inspect = await inspectAll(ctx, w.hostname);
      // The page shows this reply's stats: its pool size is the record's too (after a pool_grow).
      if (inspect) ctx.model.applyStats({ [w.hostname]: inspect.stats });
      return { worker: w, inspect };
    }
  }
  if (head === "tasks") {
    if (path.length === 1) {
      const text = params.get("text") ?? undefined;
      if (text && ctx.hideArgs) {
        throw new HttpError(
          400,
          "hidden",
          "Text search is off while args are hidden (--hide-args)",
        );
      }
      const cursor = params.get("cursor");
      const { total, tasks, ...paging } = ctx.model.tasks.query({
        state: params.get("state") || undefined,
        name: params.get("name") || undefined,
        worker: params.get("worker") || undefined,
        text: text || undefined,
        offset: intParam(params.get("offset"), "offset", 0, 1e9, 0),
        limit: intParam(params.get("limit"), "limit", 1, 500, 50),
        cursor: cursor ? intParam(cursor, "cursor", 0, Number.MAX_SAFE_INTEGER, 0) : undefined,
      });
      return {
        total,
        ...paging,
        tasks: tasks.map((t) => taskJson(t, ctx.hideArgs)),
        names: ctx.model.tasks.names(),
      };
    }
    if (path.length === 2) {
      const t = knownTask(ctx, id);
      const brief = (tid: string | null) => {
        if (tid === null) return null;
        const o = ctx.model.tasks.get(tid);
        return { uuid: tid, name: o?.name ?? null, state: o?.state ?? null };
      };
      return {
        task: taskJson(t, ctx.hideArgs),
        parent: brief(t.parentId),
        root: t.rootId && t.rootId !== t.uuid ? brief(t.rootId) : null,
        children: ctx.model.tasks.children(t.uuid).map(brief),
        workflow: workflow(ctx, t.rootId ?? t.uuid),
        queues: retryQueues(ctx.model, t),
      };
    }
  }
  if (head === "queues" && path.length === 1) {
    const depths = await ctx.queueDepths();
    return { queues: [...depths].map(([name, depth]) => ({ name, depth })) };
  }
  if (head === "parked" && path.length === 1) {
    const limit = intParam(params.get("limit"), "limit", 1, 1000, 100);
    const broker = await ctx.app.broker();
    const [list, total] = await Promise.all([broker.listParked({ limit }), broker.countParked()]);
    return {
      parked: list.map((p) => ({
        ...p,
        reason: ctx.hideArgs ? maskReason(p.reason) : p.reason,
        parkedAt: p.parkedAt.toISOString(),
      })),
      total: Math.max(total, list.length),
    };
  }
  throw new HttpError(404, "not_found", `No API route GET /api/${path.join("/")}`);
}

/**
 * What a revoke or terminate got: each worker's reply (Celery's "tasks ID flagged as
 * revoked", "terminate: ID"), or that none answered within {@linkcode REPLY_TIMEOUT_S}.
 */
function revokeMessage(
  terminate: boolean,
  id: string,
  replies: NodeReply<{ ok?: string; error?: string }>[],
): string {
  const sent = `${terminate ? "Terminate" : "Revoke"} sent for ${id}`;
  const answers = replies.flatMap((r) => Object.entries(r)).map(([node, a]) =>
    `${node}: ${a.error === undefined ? a.ok ?? "ok" : `refused: ${a.error}`}`
  );
  if (answers.length === 0) return `${sent}; no worker replied within ${REPLY_TIMEOUT_S} s`;
  return `${sent}. ${answers.join("; ")}`;
}

/**
 * Run a POST action under `/api/`.
 *
 * @param ctx the context
 * @param req the request (CSRF checked here)
 * @param path the path after `/api/`
 * @returns the JSON value
 * @throws {HttpError} 403 read-only or CSRF, 404 unknown target (a revoke or terminate takes
 *   any task id), 409 finished task, 400 bad body
 */
export async function apiPost(ctx: ApiContext, req: Request, path: string[]): Promise<unknown> {
  if (ctx.readOnly) {
    throw new HttpError(403, "read_only", "The dashboard runs with --read-only: actions are off");
  }
  const token = req.headers.get("x-csrf-token") ?? "";
  if (!safeEqual(token, ctx.csrfToken)) {
    throw new HttpError(
      403,
      "csrf",
      "Missing or wrong X-CSRF-Token header (take it from GET /api/session)",
    );
  }
  const b = await jsonBody(req);
  const [head, id, action] = path;
  if (head === "tasks" && path.length === 3) {
    if (action === "revoke" || action === "terminate") {
      // An id the table does not hold (evicted, or never seen) is revoked all the same, as
      // Flower does: a long-running task sends no events, so it is the first evicted.
      const t = ctx.model.tasks.get(id);
      if (t && READY_STATES.has(t.state)) {
        throw new HttpError(409, "finished", `Task ${id} already finished (${t.state})`);
      }
      const terminate = action === "terminate";
      const signal = b.signal === undefined ? "SIGTERM" : b.signal;
      if (!isSignalName(signal)) {
        throw new HttpError(
          400,
          "bad_param",
          "signal must be a signal's name, as SIGTERM, SIGKILL or KILL (a Python worker would refuse another)",
        );
      }
      // Every online worker answers a revoke: once they all have, the wait is over.
      const online = ctx.model.workers.list().filter((w) => w.online).length;
      const replies = await ctx.app.control.revoke(id, {
        terminate,
        signal,
        reply: true,
        timeout: REPLY_TIMEOUT_S,
        limit: online || undefined,
      });
      return { ok: true, replies, message: revokeMessage(terminate, id, replies) };
    }
    if (action === "retry") return await retryTask(ctx.app, ctx.model, knownTask(ctx, id), b);
  }
  if (head === "workers" && path.length === 3 && WORKER_ACTIONS.has(action)) {
    const w = knownWorker(ctx, id);
    const destination = [w.hostname];
    let args: Record<string, unknown> = {};
    if (action === "pool_grow" || action === "pool_shrink") {
      args = { n: intParam(b.n, "n", 1, 1000, 1) };
    } else if (action === "autoscale") {
      if (b.max === undefined || b.max === null || b.max === "") {
        throw new HttpError(400, "bad_param", "max is required (the most Web Workers)");
      }
      args = { max: intParam(b.max, "max", 1, 1000, 1), min: intParam(b.min, "min", 0, 1000, 0) };
    } else if (action === "add_consumer" || action === "cancel_consumer") {
      args = { queue: stringParam(b, "queue") };
    } else if (action === "rate_limit") {
      const rate = b.rate;
      if (rate !== null && typeof rate !== "string" && typeof rate !== "number") {
        throw new HttpError(400, "bad_param", 'rate must be like "10/s", a number, or null');
      }
      args = { task_name: stringParam(b, "task"), rate_limit: rate ?? 0 };
    }
    if (action === "shutdown") { // a worker that shuts down does not answer
      await ctx.app.control.broadcast(action, args, { destination });
      return { ok: true, message: `shutdown sent to ${w.hostname}` };
    }
    const replies = await ctx.app.control.call<{ ok?: unknown; error?: unknown }>(action, args, {
      destination,
      timeout: REPLY_TIMEOUT_S,
    });
    const reply = replies.find((r) => w.hostname in r)?.[w.hostname];
    if (!reply) {
      return {
        ok: true,
        message: `${action} sent to ${w.hostname}; no reply within ${REPLY_TIMEOUT_S} s`,
      };
    }
    if (reply.error !== undefined) {
      throw new HttpError(409, "worker_refused", `${w.hostname} refused ${action}: ${reply.error}`);
    }
    return { ok: true, message: `${w.hostname}: ${String(reply.ok ?? "ok")}` };
  }
  if (head === "queues" && path.length === 3 && action === "purge") {
    if (b.confirm !== id) {
      throw new HttpError(
        400,
        "confirm",
        `Purging deletes every waiting message: send {"confirm": "${id}"} to confirm`,
      );
    }
    const n = await ctx.app.purge(id);
    ctx.queuesChanged();
    return { ok: true, purged: n, message: `Purged ${n} message(s) from ${id}` };
  }
  if (head === "parked" && path.length === 2 && id === "requeue") {
    const limit = intParam(b.limit, "limit", 1, 100_000, 1);
    const n = await (await ctx.app.broker()).requeueParked({ limit });
    ctx.queuesChanged();
    return { ok: true, requeued: n, message: `Requeued ${n} parked message(s)` };
  }
  throw new HttpError(404, "not_found", `No API action POST /api/${path.join("/")}`);
}
