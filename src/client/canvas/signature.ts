/**
 * Typed signatures: a task call that is not sent yet ({@link Signature}),
 * and a group of them ({@link Group}). They serialize to exactly Celery's
 * signature dict and are applied by the app. Their execution options are
 * in signature_options.ts.
 *
 * @module
 */

import type { SignatureDict } from "../../protocol/message.ts";
import { decodeSignature, encodeSignature, type ResultTuple } from "../../protocol/signature.ts";
import { chainSignature, chunksToGroup, kind, tasksOf } from "../../protocol/canvas_shape.ts";
import { AsyncResult, type ResultSource } from "../async_result.ts";
import { type GroupResult, resultFromTuple } from "../group_result.ts";
import { celeryOptions, type SignatureOptions } from "./signature_options.ts";

/**
 * What a signature needs from the app: apply a canvas and read results.
 *
 * @example
 * ```ts
 * import { type CanvasApp, Celery } from "@celeriac/celeriac";
 * const app: CanvasApp = new Celery({ broker: "kv://:memory:" });
 * ```
 */
export interface CanvasApp extends ResultSource {
  /** Publish what a signature dict applies to (see `planCanvas`). */
  applyCanvas(sig: SignatureDict, call?: CanvasCall): Promise<AppliedCanvas>;
}

/**
 * The result tree of an applied canvas: for a plain task sent with
 * `ignore_result`, `ignored` is true, so its handle's `get()` waits for
 * nothing (as Celery's `AsyncResult.ignored`).
 *
 * @example
 * ```ts
 * import type { AppliedCanvas } from "@celeriac/celeriac";
 * const tree: AppliedCanvas = { id: "a", ignored: true };
 * ```
 */
export interface AppliedCanvas extends ResultTuple {
  /** A plain task sent with `ignore_result` (default false: a result is stored). */
  ignored?: boolean;
}

/**
 * Arguments and options of one application of a signature.
 *
 * @example
 * ```ts
 * import type { CanvasCall } from "@celeriac/celeriac";
 * const call: CanvasCall = { args: [1], options: { countdown: 5 } };
 * ```
 */
export interface CanvasCall {
  /** Prepended to the signature's arguments (unless immutable). */
  args?: readonly unknown[];
  /** Merged over its keyword arguments (unless immutable). */
  kwargs?: Record<string, unknown>;
  /** Celery execution options merged over its own. */
  options?: Record<string, unknown>;
}

let wrapped: (sig: CanvasBase<unknown>) => SignatureDict;

/**
 * The signature dict a signature or group wraps, in wire order, without the
 * deep copy {@link CanvasBase.toDict} makes: what `group()`, `chain()` and
 * `chord()` compose, at a cost that does not grow with the members' size (a
 * group of 200,000 is not copied again for each level it is nested in).
 * The dict's parts stay shared with the signature, which is safe because a
 * signature never modifies them in place: `set()`, `link()` and `onError()`
 * replace its options object, and planning a canvas builds new objects.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const dict = canvasDict(add.s(1, 2)); // { task: "tasks.add", args: [1, 2], ... }
 * ```
 *
 * @param sig the signature or group
 * @returns its dict (a new top-level object; its parts shared)
 */
export function canvasDict(sig: CanvasBase<unknown>): SignatureDict {
  return encodeSignature(wrapped(sig));
}

/**
 * Base of {@link Signature} and {@link Group}: the signature dict, its
 * options and links. `R` is the result type.
 *
 * @example
 * ```ts
 * import { CanvasBase } from "@celeriac/celeriac";
 * function describe(sig: CanvasBase<unknown>) {
 *   return `${sig.task}(${sig.args.join(", ")})`;
 * }
 * ```
 */
export abstract class CanvasBase<R> {
  /** Brand for the result type; never set at run time. */
  declare readonly __result?: R;
  /** The app that applies it. */
  readonly app: CanvasApp;
  #dict: SignatureDict;

  static {
    wrapped = (sig) => sig.#dict;
  }

  /**
   * Wrap a signature dict.
   *
   * @param app the app that applies it
   * @param dict Celery's signature dict
   */
  constructor(app: CanvasApp, dict: SignatureDict) {
    this.app = app;
    this.#dict = decodeSignature(dict);
  }

  /** Task name (`celery.chain`, `celery.group`, `celery.chord` for composites). */
  get task(): string {
    return this.#dict.task;
  }

  /** Partial positional arguments. */
  get args(): readonly unknown[] {
    return this.#dict.args;
  }

  /** Partial keyword arguments. */
  get kwargs(): Readonly<Record<string, unknown>> {
    return this.#dict.kwargs;
  }

  /** Execution options (Celery names). */
  get options(): Readonly<Record<string, unknown>> {
    return this.#dict.options;
  }

  /** `null` for a plain task, else the composite kind. */
  get subtaskType(): string | null {
    return this.#dict.subtask_type;
  }

  /** True when the parent's result is not prepended (`.si()`). */
  get immutable(): boolean {
    return this.#dict.immutable;
  }

  /** Replace the dict's members (a new dict: the old one may be shared by a canvas). */
  protected setMembers(tasks: SignatureDict[]): void {
    const d = this.#dict;
    this.#dict = {
      ...d,
      task: "celery.group",
      kwargs: { ...d.kwargs, tasks },
      subtask_type: "group",
    };
  }

  /** Celery's signature dict, as Python's `dict(sig)` (a copy). */
  toDict(): SignatureDict {
    return structuredClone(encodeSignature(this.#dict));
  }

  /** `JSON.stringify` writes the signature dict. */
  toJSON(): SignatureDict {
    return this.toDict();
  }

  /**
   * Set execution options (merged over earlier ones), as Celery's `.set()`.
   *
   * @param options countdown, queue, priority, ...
   * @returns this signature
   */
  set(options: SignatureOptions): this {
    this.#dict.options = { ...this.#dict.options, ...celeryOptions(options, this.#dict.task) };
    return this;
  }

  #addOption(name: "link" | "link_error", sig: Signature<unknown> | Group<unknown[]>): this {
    const current = this.#dict.options[name];
    const list = Array.isArray(current) ? current : current ? [current] : [];
    // A new options object: the old one may be shared by a canvas this signature is part of.
    this.#dict.options = { ...this.#dict.options, [name]: [...list, sig.toDict()] };
    return this;
  }

  /**
   * Apply `callback` with this task's result when it succeeds (`link`).
   *
   * @param callback the signature to apply
   * @returns this signature
   */
  link(callback: Signature<unknown> | Group<unknown[]>): this {
    return this.#addOption("link", callback);
  }

  /**
   * Apply `errback` with this task's id when it fails (`link_error`).
   *
   * @param errback the signature to apply
   * @returns this signature
   */
  onError(errback: Signature<unknown> | Group<unknown[]>): this {
    return this.#addOption("link_error", errback);
  }

  /** Apply and return the result tree. */
  protected async applyTree(
    args: readonly unknown[],
    options: SignatureOptions,
  ): Promise<AppliedCanvas> {
    return await this.app.applyCanvas(this.#dict, {
      args,
      options: celeryOptions(options, this.#dict.task),
    });
  }
}

/**
 * A task call not sent yet, typed by its result `R`: made by `task.s()`,
 * `task.si()`, `app.signature()`, `chain()`, `chord()`, `task.map()` and
 * `task.starmap()`.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const sig = add.s(2, 2).set({ countdown: 1 });
 * const r = await sig.applyAsync(); // AsyncResult<number>
 * ```
 */
export class Signature<R = unknown> extends CanvasBase<R> {
  /**
   * Wrap a signature dict (e.g. one received from Python).
   *
   * @param app the app that applies it
   * @param dict Celery's signature dict
   * @throws {ProtocolError} when the dict is malformed (unknown keys, wrong `subtask_type`)
   */
  constructor(app: CanvasApp, dict: SignatureDict) {
    super(app, dict);
  }

  /**
   * A copy, optionally with extra partial arguments and options.
   *
   * @param args appended to the partial arguments
   * @param options merged over the options
   * @returns the copy
   */
  clone(args: readonly unknown[] = [], options: SignatureOptions = {}): Signature<R> {
    const d = this.toDict();
    d.args = [...d.args, ...args];
    return new Signature<R>(this.app, d).set(options);
  }

  /**
   * Chain: run `next` with this result (`a.pipe(b)` is Celery's `a | b`).
   *
   * @param next the next step
   * @returns the chain, typed by the last step
   */
  pipe<R2>(next: Signature<R2>): Signature<R2> {
    return new Signature<R2>(this.app, chainSignature([canvasDict(this), canvasDict(next)]));
  }

  /**
   * Send it. Each call it sends now (the task; a chain's first step; a
   * chord's header members, or its body when the header is empty) is first
   * checked against its task's handler when this app defines the task
   * (as `task.applyAsync()` is): one that does not fit rejects with a
   * `TaskArgumentsError` and nothing is sent.
   *
   * @param args prepended to the partial arguments (unless immutable)
   * @param options execution options for this call
   * @returns the result; for a chain, the last step's, with `.parent` links
   * @throws {TaskArgumentsError} (as a rejection) for a call its task's handler cannot take
   */
  async applyAsync(
    args: readonly unknown[] = [],
    options: SignatureOptions = {},
  ): Promise<AsyncResult<R>> {
    const tree = await this.applyTree(args, options);
    if (tree.ignored) return new AsyncResult<R>(tree.id, this.app, undefined, undefined, true);
    return resultFromTuple(tree, this.app) as AsyncResult<R>;
  }

  /**
   * Send it with extra positional arguments.
   *
   * @param args prepended to the partial arguments
   * @returns the result
   * @throws {TaskArgumentsError} (as a rejection) as {@link Signature.applyAsync}
   */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }
}

/**
 * What a {@link Group} wraps, for the types: `"group"` for a `celery.group`
 * dict (what `group()` returns), whose members take its place in an
 * enclosing group and which is its member when it has one; `"other"` for
 * what only runs as a group (`task.chunks()`, a chain ending in a group),
 * one nested member of an enclosing group, never unrolled. A `Group` whose
 * kind the type does not know (`new Group(app, dict)`) is typed as either.
 *
 * @example
 * ```ts
 * import { Celery, group, type Group, type GroupKind } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const g: Group<[number], "group"> = group([add.s(1, 2)]);
 * const k: GroupKind = "other";
 * ```
 */
export type GroupKind = "group" | "other";

/**
 * Signatures run in parallel, typed by the tuple (or array) of their
 * results: made by `group()` and `task.chunks()`.
 *
 * @example
 * ```ts
 * import { Celery, group } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const mul = app.task("tasks.mul", (a: number, b: number) => a * b);
 * const g = group([add.s(1, 1), mul.s(2, 3)]); // Group<[number, number]>
 * const res = await g.applyAsync();
 * const [sum, product] = await res.get({ timeout: 10_000 });
 * ```
 */
export class Group<T extends unknown[] = unknown[], K extends GroupKind = GroupKind>
  extends CanvasBase<T> {
  /** Brand for what the group wraps (see {@link GroupKind}); never set at run time. */
  declare readonly __kind?: K;

  /**
   * Wrap a `celery.group` (or `celery.chunks`) dict.
   *
   * @param app the app that applies it
   * @param dict the signature dict
   */
  constructor(app: CanvasApp, dict: SignatureDict) {
    super(app, dict);
  }

  /**
   * A copy.
   *
   * @param options merged over the options
   * @returns the copy
   */
  clone(options: SignatureOptions = {}): Group<T, K> {
    return new Group<T, K>(this.app, this.toDict()).set(options);
  }

  /**
   * Spread the members' start times (Celery's `group.skew()`): the first
   * gets a `countdown` of `start` seconds, each next one `step` more, up to
   * `stop` (then the rest keep the last). A group of `chunks` becomes a
   * plain group of its chunks first, as Celery's `chunks(...).group()`.
   *
   * @example
   * ```ts
   * import { Celery, group } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const fetchOne = app.task("tasks.fetch_one", async (url: string) => (await fetch(url)).status);
   * const urls = ["https://example.com/a", "https://example.com/b", "https://example.com/c"];
   * await group(urls.map((u) => fetchOne.s(u))).skew(0, null, 0.5).applyAsync(); // 0 s, 0.5 s, 1 s, ...
   * ```
   *
   * @param start the first member's countdown, seconds (default 1)
   * @param stop the largest countdown, or null for none (default)
   * @param step seconds between members (default 1)
   * @returns this group
   * @throws {TypeError} when this is not a group (a chain or chord ending in one)
   */
  skew(start = 1, stop: number | null = null, step = 1): this {
    const dict = canvasDict(this);
    const k = kind(dict);
    if (k !== "group" && k !== "chunks") {
      throw new TypeError(`skew() spreads a group's members; this is a ${k ?? "task"}`);
    }
    let countdown = start;
    let last = start;
    const tasks = tasksOf(k === "chunks" ? chunksToGroup(dict) : dict).map((t) => {
      if (stop === null || countdown <= stop) {
        last = countdown;
        countdown += step;
      }
      return { ...t, options: { ...t.options, countdown: last } };
    });
    this.setMembers(tasks);
    return this;
  }

  /**
   * Send every member, once each member's call is checked against its
   * task's handler when this app defines the task: one that does not fit
   * rejects with a `TaskArgumentsError` and no member is sent.
   *
   * @param args prepended to every member's partial arguments
   * @param options execution options for every member (`taskId` is the group id)
   * @returns the group result
   * @throws {TaskArgumentsError} (as a rejection) for a member its task's handler cannot take
   */
  async applyAsync(
    args: readonly unknown[] = [],
    options: SignatureOptions = {},
  ): Promise<GroupResult<T>> {
    return resultFromTuple(await this.applyTree(args, options), this.app) as GroupResult<T>;
  }

  /**
   * Send every member with extra positional arguments.
   *
   * @param args prepended to every member's partial arguments
   * @returns the group result
   * @throws {TaskArgumentsError} (as a rejection) as {@link Group.applyAsync}
   */
  delay(...args: unknown[]): Promise<GroupResult<T>> {
    return this.applyAsync(args);
  }
}

/**
 * The result type of a signature or group.
 *
 * @example
 * ```ts
 * import { Celery, type ResultOf } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const sig = add.s(2, 3);
 * type N = ResultOf<typeof sig>; // number for add.s(1, 2)
 * ```
 */
export type ResultOf<S> = S extends Signature<infer R> ? R : S extends Group<infer T> ? T : never;
