/**
 * Argument checks against a task's handler, failing as Python does when a
 * Celery task is called with arguments it cannot take
 * (`TypeError: add() missing 1 required positional argument: 'b'`): the
 * worker's before it runs a task, the client's before it sends a call of a
 * task defined in the program (`delay()`, as Celery's `apply_async` checks
 * with `Task.typing`), and `call --app`'s warning.
 *
 * @module
 */

import type { TaskBody } from "../protocol/message.ts";
import { TaskArgumentsError } from "./errors.ts";
import type { Task } from "./task.ts";

/**
 * What a handler accepts, counting positional arguments only (a bound
 * task's context is not one).
 *
 * @example
 * ```ts
 * handlerSignature((a: number, b = 1) => a + b, { bind: false }, "tasks.add");
 * // { name: "add", names: ["a", "b"], required: 1, max: 2 }
 * ```
 */
export interface HandlerSignature {
  /** The name Python would print: the function's, else the task name's last part. */
  name: string;
  /** Parameter names, for messages (`arg<n>` where unknown). */
  names: string[];
  /** Arguments needed: the handler's `length` (parameters before the first default or rest). */
  required: number;
  /** Most arguments taken; `Infinity` with a rest parameter or an unreadable parameter list. */
  max: number;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Split a parameter list at its top-level commas (brackets, strings and templates skipped). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  const last = text.slice(start);
  if (last.trim() !== "") parts.push(last);
  return parts.map((p) => p.trim());
}

/** The parameter list of a function's source, or `null` when it cannot be read. */
function parameterList(fn: (...args: never[]) => unknown): string[] | null {
  const src = Function.prototype.toString.call(fn).replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, "");
  const single = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (single) return [single[1]];
  const open = src.indexOf("(");
  if (open < 0 || /\{\s*\[native code\]\s*\}\s*$/.test(src)) return null;
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return splitTopLevel(src.slice(open + 1, i));
  }
  return null;
}

const cache = new WeakMap<object, HandlerSignature>();

/**
 * Read what a handler accepts (cached per handler).
 *
 * @example
 * ```ts
 * handlerSignature((ctx: unknown, url: string) => url, { bind: true }, "tasks.fetch").names; // ["url"]
 * ```
 *
 * @param handler the task's handler
 * @param options `bind` (the first parameter is the context) and declared `params`
 * @param taskName the task name, for the message when the handler has no name
 * @returns the signature
 */
export function handlerSignature(
  handler: (...args: never[]) => unknown,
  options: { bind?: boolean; params?: readonly string[] },
  taskName: string,
): HandlerSignature {
  const known = cache.get(handler);
  if (known) return known;
  const skip = options.bind ? 1 : 0;
  const list = parameterList(handler)?.slice(skip) ?? null;
  const rest = list?.some((p) => p.startsWith("...")) ?? true;
  const names = (list ?? []).map((p, i) => {
    const id = /^[A-Za-z_$][\w$]*/.exec(p)?.[0];
    return options.params?.[i] ?? id ?? `arg${i + 1}`;
  });
  for (let i = names.length; i < (options.params?.length ?? 0); i++) names.push(options.params![i]);
  const sig: HandlerSignature = {
    name: IDENTIFIER.test(handler.name) ? handler.name : taskName.split(".").pop() || taskName,
    names,
    required: Math.max(0, handler.length - skip),
    max: rest ? Infinity : names.length,
  };
  cache.set(handler, sig);
  return sig;
}

function quoted(names: string[]): string {
  const q = names.map((n) => `'${n}'`);
  if (q.length === 1) return q[0];
  if (q.length === 2) return `${q[0]} and ${q[1]}`;
  return `${q.slice(0, -1).join(", ")}, and ${q[q.length - 1]}`;
}

/**
 * Throw Python's `TypeError` when a call does not fit the handler: too many
 * positional arguments, or required ones missing.
 *
 * @example
 * ```ts
 * const sig = handlerSignature((a: number, b: number) => a + b, {}, "tasks.add");
 * checkArity(sig, [1], 1);
 * // TypeError: add() missing 1 required positional argument: 'b'
 * ```
 *
 * @param sig what the handler accepts
 * @param args the arguments it would get (keyword arguments placed by name)
 * @param given how many positional arguments the message carried
 * @throws {TypeError} with Python's message
 */
export function checkArity(sig: HandlerSignature, args: readonly unknown[], given: number): void {
  if (given > sig.max) {
    const takes = sig.required === sig.max
      ? `${sig.max} positional argument${sig.max === 1 ? "" : "s"}`
      : `from ${sig.required} to ${sig.max} positional arguments`;
    throw new TypeError(
      `${sig.name}() takes ${takes} but ${given} ${given === 1 ? "was" : "were"} given`,
    );
  }
  const missing: string[] = [];
  for (let i = 0; i < sig.required; i++) {
    if (i >= args.length || !(i in args)) missing.push(sig.names[i] ?? `arg${i + 1}`);
  }
  if (missing.length) {
    throw new TypeError(
      `${sig.name}() missing ${missing.length} required positional argument${
        missing.length === 1 ? "" : "s"
      }: ${quoted(missing)}`,
    );
  }
}

/**
 * Check a call of a task before its handler runs: the positional
 * arguments (with keyword arguments placed by `params`) against the
 * handler. A bound task without `params` that got keyword arguments reads
 * them from `ctx.kwargs`, so only its positional count is checked.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const task = app.task("tasks.add", (a: number, b: number) => a + b);
 * checkCall(task, { args: [1], kwargs: {} }, [1]); // throws for tasks.add(a, b)
 * ```
 *
 * @param task the task (handler, options, name)
 * @param body the message's arguments
 * @param args the arguments the handler would get
 * @throws {TypeError} with Python's message
 */
export function checkCall(
  task: {
    name: string;
    handler: ((...args: never[]) => unknown) | undefined;
    options: { bind?: boolean; params?: readonly string[] };
  },
  body: { args: readonly unknown[]; kwargs: Record<string, unknown> },
  args: readonly unknown[],
): void {
  if (!task.handler) return;
  const sig = handlerSignature(task.handler, task.options, task.name);
  const kwargsInCtx = task.options.bind && !task.options.params &&
    Object.keys(body.kwargs).length > 0;
  checkArity(kwargsInCtx ? { ...sig, required: 0 } : sig, args, body.args.length);
}

/**
 * The arguments a task's handler is called with: the body's positional
 * arguments, and its keyword arguments where the handler's `params` name
 * them (a bound task reads the others from `ctx.kwargs`). Throws Python's
 * `TypeError`s (first offending keyword named) for a call that does not fit.
 *
 * @example
 * ```ts ignore
 * const args = callArgs(task, body); // params ["a", "b"], args [1], kwargs { b: 2 }: [1, 2]
 * ```
 *
 * @param task the task called
 * @param body the decoded body (its arguments)
 * @returns the handler's arguments
 * @throws {TypeError} for a keyword the handler does not take, one given twice, or keywords to a
 *   handler that declares no `params` and is not bound
 */
export function callArgs(
  task: Task<never, unknown>,
  body: Pick<TaskBody, "args" | "kwargs">,
): unknown[] {
  const kwargs = body.kwargs;
  const keys = Object.keys(kwargs);
  if (keys.length === 0) return body.args;
  const params = task.options.params;
  if (params) {
    // Python's checks and messages, in its order: the first offending keyword is named.
    const fn = task.handler ? handlerSignature(task.handler, task.options, task.name).name : "";
    const args = [...body.args];
    for (const k of keys) {
      const i = params.indexOf(k);
      if (i < 0) {
        // A bound task reads keywords it does not name from ctx.kwargs.
        if (task.options.bind) continue;
        throw new TypeError(`${fn}() got an unexpected keyword argument '${shownName(k)}'`);
      }
      if (i < body.args.length) {
        throw new TypeError(`${fn}() got multiple values for argument '${k}'`);
      }
      args[i] = kwargs[k];
    }
    return args;
  }
  if (task.options.bind) return body.args;
  throw new TypeError(
    `${task.name}() got keyword argument(s) ${namesOf(keys)}, but its handler takes positional ` +
      `arguments only: declare { params: [...] } or { bind: true } and read ctx.kwargs`,
  );
}

/** Keyword names shown in an error: a message sent with 200,000 of them gives a line, not megabytes. */
const NAMES_SHOWN = 10;
/** Characters of a keyword name shown in an error: a name of a megabyte gives a line too. */
const NAME_CHARS = 100;

function shownName(name: string): string {
  return name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}…` : name;
}

function namesOf(keys: readonly string[]): string {
  const shown = keys.slice(0, NAMES_SHOWN).map(shownName).join(", ");
  const more = keys.length - NAMES_SHOWN;
  return more > 0 ? `${shown} and ${more.toLocaleString("en-US")} more` : shown;
}

/**
 * Python's `TypeError` text for a call the task's handler cannot take
 * (what its worker would fail the task with: keywords placed by
 * {@link callArgs}, then {@link checkCall}); `undefined` for a call it
 * takes, or a task with no handler here (nothing to check against).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * unfitReason(add, [1], {}); // "add() missing 1 required positional argument: 'b'"
 * unfitReason(add, [1, 2], {}); // undefined
 * ```
 *
 * @param task the task called
 * @param args its positional arguments
 * @param kwargs its keyword arguments
 * @returns the `TypeError`'s message, or `undefined`
 */
export function unfitReason(
  task: Task<never, unknown>,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
): string | undefined {
  if (!task.handler) return undefined;
  const body = { args: args as unknown[], kwargs };
  try {
    checkCall(task, body, callArgs(task, body));
    return undefined;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return err.message;
  }
}

/**
 * Refuse, before it is sent, a call of a task defined in this program that
 * its handler cannot take (as Celery's `apply_async` does when
 * `Task.typing` is on, its default): `delay()`, `applyAsync()` and
 * `delayMany()` check with it. A task defined with `typing: false`, or with
 * no handler here (`app.remoteTask()`), is not checked.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * checkSend(add, [1], {});
 * // TaskArgumentsError: tasks.add cannot take this call, so it was not sent: add() missing 1 …
 * ```
 *
 * @param task the task called
 * @param args its positional arguments
 * @param kwargs its keyword arguments
 * @param index the call's place in a `delayMany()` batch, if it is one
 * @throws {TaskArgumentsError} naming Python's `TypeError` for the call
 */
export function checkSend(
  task: Task<never, unknown>,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
  index?: number,
): void {
  if (task.options.typing === false) return;
  const reason = unfitReason(task, args, kwargs);
  if (reason !== undefined) throw new TaskArgumentsError(task.name, reason, index);
}

/**
 * Refuse the calls a canvas sends now when one does not fit its task's
 * handler: each whose task `task` finds is checked with {@link checkSend}
 * (one it does not find, a task defined elsewhere, is not). The client's
 * `applyCanvas` checks a canvas's sends with it before it sends any (so
 * does `celery.chord_unlock`, which sends a chord's body with it), and the
 * worker's chord join a body's before it sends the body, as Celery's
 * `apply_async` of each one checks it (`Task.typing`).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("tasks.add", (a: number, b: number) => a + b);
 * checkSends([{ task: "tasks.add", args: [1, 2, 3], kwargs: {} }], (name) => app.tasks.get(name));
 * // TaskArgumentsError: tasks.add cannot take this call, … add() takes 2 positional arguments …
 * ```
 *
 * @param sends the calls, each with the arguments it is sent with
 * @param task the task a call's name is defined as here, or `undefined`
 * @throws {TaskArgumentsError} for the first call its task's handler cannot take
 */
export function checkSends(
  sends: Iterable<{
    readonly task: string;
    readonly args: readonly unknown[];
    readonly kwargs: Record<string, unknown>;
  }>,
  task: (name: string) => Task<never, unknown> | undefined,
): void {
  for (const send of sends) {
    const defined = task(send.task);
    if (defined) checkSend(defined, send.args, send.kwargs);
  }
}

/**
 * Builds a handler's arguments from positional and keyword ones (keyword
 * arguments go where the handler's parameters name them).
 */
export type PlaceArgs = (
  task: Task<never, unknown>,
  args: unknown[],
  kwargs: Record<string, unknown>,
) => unknown[];

/**
 * The arguments `task`'s handler would get for a call with `args` and
 * `kwargs`, after checking that the call fits it.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const task = app.task("tasks.add", (a: number, b: number) => a + b);
 * const placed = fittedArgs(task, [1], {}, (t, args) => args); // throws for tasks.add(a, b)
 * ```
 *
 * @param task the task called
 * @param args its positional arguments
 * @param kwargs its keyword arguments
 * @param place builds the handler's arguments from them
 * @returns the handler's arguments
 * @throws {TypeError} with Python's message when the call does not fit
 */
export function fittedArgs(
  task: Task<never, unknown>,
  args: unknown[],
  kwargs: Record<string, unknown>,
  place: PlaceArgs,
): unknown[] {
  const placed = place(task, args, kwargs);
  checkCall(task, { args, kwargs }, placed);
  return placed;
}
