/**
 * Task routing (Celery's `task_routes`): which queue, exchange, routing key,
 * priority (and any other call option) a call or a canvas step is sent with
 * where the call, the signature and the task set none.
 *
 * @module
 */

import { pyIsoFormat } from "../protocol/time.ts";
import { SIGNATURE_OPTION_NAMES, type SignatureOptions } from "./canvas/signature_options.ts";
import type { ApplyOptions, TaskOptions } from "./task_options.ts";

/**
 * Where a call goes: a queue name, or call options (queue, exchange, routing
 * key, priority, …). Options given to the call or to the task win over the
 * route's, as in Celery.
 *
 * @example
 * ```ts
 * import type { TaskRoute } from "@celeriac/celeriac";
 * const toMath: TaskRoute = "math";
 * const toFeeds: TaskRoute = { queue: "feeds", priority: 9 };
 * ```
 */
export type TaskRoute = string | Omit<ApplyOptions, "kwargs" | "taskId" | "countdown" | "eta">;

/**
 * A routing function [a Celery router]: gets the task name, arguments,
 * keyword arguments and the call's options; returns a route, or `null` /
 * `undefined` to let the next router decide.
 *
 * @example
 * ```ts
 * import { Celery, type TaskRouter } from "@celeriac/celeriac";
 * const byTenant: TaskRouter = (name, _args, kwargs) =>
 *   name.startsWith("reports.") ? `reports-${kwargs.tenant ?? "shared"}` : null;
 * const app = new Celery({ broker: "kv://:memory:", taskRoutes: byTenant });
 * ```
 */
export type TaskRouter = (
  name: string,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
  options: ApplyOptions,
) => TaskRoute | null | undefined;

/**
 * A map of task names to routes. Keys with `*` are glob patterns
 * (`"feeds.*"`), tried in order after the exact names; a `Map` may also have
 * `RegExp` keys.
 *
 * @example
 * ```ts
 * import type { TaskRouteMap } from "@celeriac/celeriac";
 * const routes: TaskRouteMap = { "tasks.add": "math", "feeds.*": { queue: "feeds" } };
 * const withRegExp: TaskRouteMap = new Map([[/^video\.(encode|thumb)$/, "video"]]);
 * ```
 */
export type TaskRouteMap =
  | Readonly<Record<string, TaskRoute>>
  | ReadonlyMap<string | RegExp, TaskRoute>;

/**
 * Celery's `task_routes`: a map, a router function, or a list of them
 * consulted in order (the first that returns a route wins).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({
 *   broker: "kv://:memory:",
 *   taskRoutes: [
 *     { "tasks.add": "math", "feeds.*": { queue: "feeds", priority: 9 } },
 *     (name) => name.startsWith("video.") ? "video" : null,
 *   ],
 * });
 * ```
 */
export type TaskRoutes = TaskRouteMap | TaskRouter | readonly (TaskRouteMap | TaskRouter)[];

/**
 * A compiled {@link TaskRoutes}: the route of a call, or `null`.
 *
 * @example
 * ```ts
 * const route: CompiledRoutes = compileRoutes({ "tasks.*": "work" });
 * ```
 */
export type CompiledRoutes = (
  name: string,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
  options: ApplyOptions,
) => Exclude<TaskRoute, string> | null;

/**
 * A glob pattern as a regular expression, the way Python's `fnmatch`
 * reads it: `*` any text, `?` one character, `[abc]` / `[!abc]` a set.
 *
 * @example
 * ```ts
 * globToRegExp("feeds.*").test("feeds.fetch"); // true
 * ```
 *
 * @param glob the pattern
 * @returns a regular expression matching whole names
 */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[" && glob.indexOf("]", i + 2) > i) {
      const end = glob.indexOf("]", i + 2);
      let set = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
      if (set.startsWith("!")) set = `^${set.slice(1)}`;
      out += `[${set}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "s");
}

function asOptions(route: TaskRoute): Exclude<TaskRoute, string> {
  return typeof route === "string" ? { queue: route } : { ...route };
}

function mapRouter(map: TaskRouteMap): TaskRouter {
  const exact = new Map<string, TaskRoute>();
  const patterns: [RegExp, TaskRoute][] = [];
  const entries = map instanceof Map ? map.entries() : Object.entries(map);
  for (const [key, route] of entries as Iterable<[string | RegExp, TaskRoute]>) {
    if (key instanceof RegExp) patterns.push([key, route]);
    else if (key.includes("*")) patterns.push([globToRegExp(key), route]);
    else exact.set(key, route);
  }
  return (name) => exact.get(name) ?? patterns.find(([re]) => re.test(name))?.[1];
}

/**
 * Compile `taskRoutes` once: maps become lookups (exact names first, then
 * patterns in order), functions are called as given.
 *
 * @example
 * ```ts
 * const route = compileRoutes([{ "tasks.add": "math" }, () => "fallback"]);
 * route("tasks.add", [], {}, {}); // { queue: "math" }
 * route("tasks.mul", [], {}, {}); // { queue: "fallback" }
 * ```
 *
 * @param routes the setting
 * @returns a function giving the route of a call, or `null`
 * @throws {TypeError} when a router is neither a map nor a function
 */
export function compileRoutes(routes: TaskRoutes): CompiledRoutes {
  const list = Array.isArray(routes) ? routes : [routes as TaskRouteMap | TaskRouter];
  const routers = list.map((r, i): TaskRouter => {
    if (typeof r === "function") return r;
    if (r !== null && typeof r === "object") return mapRouter(r);
    throw new TypeError(
      `taskRoutes[${i}] must be a map of task names to routes or a function, got ${typeof r}`,
    );
  });
  return (name, args, kwargs, options) => {
    for (const router of routers) {
      const route = router(name, args, kwargs, options);
      if (route !== null && route !== undefined) return asOptions(route);
    }
    return null;
  };
}

/**
 * The task options that are a call's defaults (a call's or a signature's
 * own options override them), by their name in `TaskOptions` and in a
 * message's options.
 *
 * @example
 * ```ts
 * import { CALL_DEFAULTS } from "./routes.ts";
 * CALL_DEFAULTS.map(([option]) => option);
 * // ["queue", "priority", "timeLimit", "softTimeLimit", "serializer", "ignoreResult"]
 * ```
 */
export const CALL_DEFAULTS = [
  ["queue", "queue"],
  ["priority", "priority"],
  ["timeLimit", "time_limit"],
  ["softTimeLimit", "soft_time_limit"],
  ["serializer", "serializer"],
  ["ignoreResult", "ignore_result"],
] as const;

/**
 * A task's options that are the defaults of every send of its signatures, by
 * their Celery option names: what Celery's `Task.apply_async` takes from the
 * task's attributes (`queue`, `priority`, `time_limit`, `soft_time_limit`,
 * `serializer`, `ignore_result`) under a signature's own options.
 *
 * @example
 * ```ts
 * signatureDefaults({ priority: 7, timeLimit: 30 }); // { priority: 7, time_limit: 30 }
 * ```
 *
 * @param options the task's options (of a task defined in this app, or of a remoteTask handle)
 * @returns the defaults that are set (none for an unknown task)
 */
export function signatureDefaults(
  options: Readonly<TaskOptions> | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options) return out;
  for (const [option, key] of CALL_DEFAULTS) {
    if (options[option] !== undefined) out[key] = options[option];
  }
  return out;
}

function unset(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/**
 * The execution options a signature is sent with (a chain step, group or
 * chord member, callback — by the client that applies the canvas and by
 * the worker that sends the next step): its own, then its task's (queue,
 * priority, time limits, serializer, ignore_result: {@link signatureDefaults}) where it
 * sets none (an option set to null stays null), then, where still unset, every
 * option its route gives but `ignoreResult` (queue, exchange, routing key, priority,
 * serializer, headers, …, as a direct call takes them), as Celery's `Task.apply_async`
 * and router do for every `apply_async` of a signature.
 *
 * @example
 * ```ts
 * const routes = compileRoutes({ "feeds.*": { queue: "feeds", priority: 9 } });
 * routeSignature(routes, { timeLimit: 30 }, "feeds.fetch", [], {}, { countdown: 5 });
 * // { countdown: 5, time_limit: 30, queue: "feeds", priority: 9 }
 * ```
 *
 * @param routes the app's compiled routes, if any
 * @param taskOptions the options the task was defined with, if it is defined in this app
 * @param task the task name
 * @param args the positional arguments
 * @param kwargs the keyword arguments
 * @param options the signature's options (Celery's names)
 * @returns the options to send with (the given object when nothing is added)
 */
export function routeSignature(
  routes: CompiledRoutes | null,
  taskOptions: Readonly<TaskOptions> | undefined,
  task: string,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
  options: Record<string, unknown>,
): Record<string, unknown> {
  const defaults = signatureDefaults(taskOptions);
  // As Celery's Task.apply_async: the task's options under the signature's, an option set
  // (even to None) kept; then the router fills what is still unset (None included).
  const own = options.queue === undefined ? defaults.queue : options.queue;
  const route = routes?.(task, args, kwargs, {
    kwargs,
    queue: unset(own) ? undefined : own as string,
  });
  let out = options;
  const fill = (key: string, value: unknown, when: (v: unknown) => boolean) => {
    if (value === undefined || !when(out[key])) return;
    if (out === options) out = { ...options };
    out[key] = value;
  };
  for (const key in defaults) fill(key, defaults[key], (v) => v === undefined);
  for (const [name, value] of Object.entries(route ?? {})) {
    const key = SIGNATURE_OPTION_NAMES[name as keyof SignatureOptions];
    // Not a route's ignore_result: Celery's send_task takes it from the call before routing.
    if (key !== undefined && key !== "ignore_result") {
      fill(key, value instanceof Date ? pyIsoFormat(value, "+00:00") : value, unset);
    }
  }
  return out;
}
