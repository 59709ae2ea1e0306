/**
 * Canvas primitives: {@link chain}, {@link group}, {@link chord}, with result
 * types inferred from their parts.
 *
 * What the types check: a chain's result is its last step's, a group's is
 * the tuple (or array) of its members', a chord's is its body's. What they
 * do not check: that a step's first parameter accepts the previous step's
 * result (partial arguments are typed against the task's parameters, but
 * the prepended result is not).
 *
 * @module
 */

import { chainSignature, chordSignature, groupSignature } from "../../protocol/canvas_shape.ts";
import { flatMembers, isGroupOfOne, keepsGroupOfOne } from "../../protocol/canvas_nesting.ts";
import {
  type CanvasApp,
  CanvasBase,
  canvasDict,
  Group,
  type ResultOf,
  Signature,
} from "./signature.ts";

/**
 * Any signature or group: a step of a chain, a member of a group.
 *
 * @example
 * ```ts
 * import { type CanvasStep, Celery, group } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const steps: CanvasStep[] = [add.s(1, 2), group([add.s(1, 1)])];
 * ```
 */
export type CanvasStep = Signature<unknown> | Group<unknown[]>;

/**
 * The last element type of a tuple (the element type of an array).
 *
 * @example
 * ```ts
 * import type { LastOf } from "@celeriac/celeriac";
 * const x: LastOf<[number, string]> = "last";
 * ```
 */
export type LastOf<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L
  : S[number];

/**
 * The type of `chain(...steps)`: typed by the last step's result. A last
 * group of several members gives a group; a last group of exactly one
 * member is that member (Celery's `maybe_unroll_group`), so it gives a
 * signature of the member's result; a last group whose size the type does
 * not know (built from an array) may be either, so the type is the union
 * (narrow it with `instanceof Group`). A group of one right after a first
 * group of several stays a group: Celery's `chain(g1, g2)` is `g1 | g2`,
 * a chord whose body is `g2` (so `chain(g1, group([c]))` gives `[c's result]`).
 *
 * @example
 * ```ts
 * import { Celery, chain, type ChainOf, group, Signature } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const fmt = app.task("tasks.fmt", (n: number) => `${n}`);
 * const c: ChainOf<[Signature<number>, Signature<string>]> = chain(add.s(1, 2), fmt.s());
 * const one: Signature<number> = chain(add.s(1, 2), group([add.s(3)]));
 * ```
 */
export type ChainOf<S extends readonly CanvasStep[]> = S extends
  readonly [Group<infer A, "group">, Group<infer T, "group">]
  ? A extends readonly [unknown] ? ChainEnd<Group<T, "group">>
  : number extends A["length"] ? ChainEnd<Group<T, "group">> | Group<T, "other">
  : Group<T, "other">
  : ChainEnd<LastOf<S>>;

/**
 * The type of a chain ending in `L` (where the group of one right after a
 * first group, see {@link ChainOf}, is not the case): a `group()` of one is
 * its member, one of unknown size either; chunks or a chain ending in a
 * group stay a group (kind `"other"`, see `GroupKind`).
 *
 * @example
 * ```ts
 * import type { ChainEnd, Group, Signature } from "@celeriac/celeriac";
 * type One = ChainEnd<Group<[number]>>; // Signature<number>
 * ```
 */
export type ChainEnd<L> = [L] extends [Group<infer T, "other">] ? Group<T, "other">
  : [L] extends [Group<infer T>]
    ? number extends T["length"] ? Signature<T[number]> | Group<T, "other">
    : T extends readonly [infer X] ? Signature<X>
    : Group<T, "other">
  : Signature<ResultOf<L>>;

/**
 * The results of a group's members, in order, a member group's results in
 * its place (a group in a group is flattened, as Celery's `group._prepared`).
 *
 * @example
 * ```ts
 * import type { GroupResults, Group, Signature } from "@celeriac/celeriac";
 * const r: GroupResults<[Group<[number, number], "group">, Signature<string>]> = [1, 2, "three"];
 * ```
 */
export type GroupResults<S extends readonly unknown[], Done extends unknown[] = []> = S extends
  readonly [infer H, ...infer R] ? GroupResults<R, [...Done, ...MemberResults<H>]>
  : S extends readonly [] ? Done
  : [...Done, ...MemberResults<S[number]>[number][]];

/**
 * The results one group member adds: a `group()` its members' (kind
 * `"group"`, see `GroupKind`); anything else, chunks and a chain
 * ending in a group included, its own result, one element (as at run time,
 * where only `celery.group` dicts are flattened).
 *
 * @example
 * ```ts
 * import type { MemberResults, Signature } from "@celeriac/celeriac";
 * const r: MemberResults<Signature<number>> = [1];
 * ```
 */
export type MemberResults<M> = M extends Group<infer T, "group"> ? T : [ResultOf<M>];

/**
 * The type of `group(tasks)`: a group of the members' results, a member
 * group's results in its place.
 *
 * @example
 * ```ts
 * import { Celery, group, type GroupOf, Signature } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const fmt = app.task("tasks.fmt", (n: number) => `${n}`);
 * const g: GroupOf<[Signature<number>, Signature<string>]> = group([add.s(1, 2), fmt.s(3)]);
 * const flat: GroupOf<[Signature<number>, Signature<number>, Signature<string>]> = group([
 *   group([add.s(1, 1), add.s(2, 2)]),
 *   fmt.s(3),
 * ]);
 * ```
 */
export type GroupOf<S extends readonly CanvasStep[]> = Group<GroupResults<S>, "group">;

function appOf(steps: readonly CanvasStep[], what: string, app?: CanvasApp): CanvasApp {
  const found = app ?? steps[0]?.app;
  if (!found) {
    throw new TypeError(
      `An empty ${what} has no app to send through: pass { app } as the last argument`,
    );
  }
  return found;
}

/**
 * Run signatures one after the other, each receiving the previous result
 * as its first argument (unless immutable, `.si()`). A group followed by
 * a step becomes a chord, as in Celery.
 *
 * @example
 * ```ts
 * import { Celery, chain } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const mul = app.task("tasks.mul", (a: number, b: number) => a * b);
 * const r = await chain(add.s(1, 2), add.s(3), mul.s(4)).applyAsync(); // AsyncResult<number>
 * await r.get({ timeout: 10_000 }); // 24
 * ```
 *
 * @param steps the steps (at least one)
 * @returns the chain, typed by its last step
 * @throws {TypeError} when there is no step, or a step is not a signature or group
 */
export function chain<S extends readonly [CanvasStep, ...CanvasStep[]]>(...steps: S): ChainOf<S>;
/**
 * Run a list of signatures one after the other, as Celery's
 * `chain([a.s(), b.s()])`.
 *
 * @example
 * ```ts
 * import { Celery, chain } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const r = await chain([add.s(1, 2), add.s(3)]).applyAsync(); // AsyncResult<number>
 * ```
 *
 * @param steps the steps (at least one)
 * @returns the chain, typed by its last step
 */
export function chain<S extends readonly [CanvasStep, ...CanvasStep[]]>(steps: S): ChainOf<S>;
export function chain(...args: unknown[]): CanvasBase<unknown> {
  const steps = (args.length === 1 && Array.isArray(args[0]) ? args[0] : args) as CanvasStep[];
  if (steps.length === 0) throw new TypeError("chain() needs at least one signature");
  for (const [i, step] of steps.entries()) {
    if (!(step instanceof CanvasBase)) {
      throw new TypeError(
        `chain() step ${
          i + 1
        } is not a signature or a group: pass task.s(...), task.si(...), group([...]) or chord(...)`,
      );
    }
  }
  const dict = chainSignature(steps.map(canvasDict));
  const last = steps[steps.length - 1];
  const app = appOf(steps, "chain");
  // A last group of one is its member: the chain's result is that member's (as the plan's),
  // unless it is the body of a first group's chord (as chainSteps keeps it).
  const keptBody = steps.length === 2 && keepsGroupOfOne(canvasDict(steps[0]));
  return last instanceof Group && (keptBody || !isGroupOfOne(canvasDict(last)))
    ? new Group(app, dict)
    : new Signature(app, dict);
}

/**
 * Run signatures in parallel; the result is the list of their results, in
 * order.
 *
 * @example
 * ```ts
 * import { Celery, group } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const res = await group([add.s(1, 1), add.s(2, 2)]).applyAsync(); // GroupResult<[number, number]>
 * await res.get({ timeout: 10_000 }); // [2, 4]
 * ```
 *
 * @param tasks the members
 * @param options `app` for an empty group (otherwise the members' app)
 * @returns the group
 */
export function group<const S extends readonly CanvasStep[]>(
  tasks: S,
  options: { app?: CanvasApp } = {},
): GroupOf<S> {
  const app = appOf(tasks, "group", options.app);
  // A member group's members take its place, as the plan would put them (Celery's
  // group._prepared), so a group of one group of one is a group of one.
  return new Group(
    app,
    groupSignature(flatMembers(groupSignature(tasks.map(canvasDict)))),
  ) as GroupOf<
    S
  >;
}

/**
 * Run the header in parallel, then the body once with the list of header
 * results as its first argument. A failing header member fails the body
 * with `ChordError` (Celery's message), without running it.
 *
 * @example
 * ```ts
 * import { Celery, chord } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const tsum = app.task("tasks.tsum", (ns: number[]) => ns.reduce((a, b) => a + b, 0));
 * const r = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync(); // AsyncResult<number>
 * await r.get({ timeout: 10_000 }); // 6
 * ```
 *
 * @param header the header: a group or a list of signatures
 * @param body the body
 * @returns the chord, typed by its body
 */
export function chord<R>(
  header: Group<unknown[]> | readonly CanvasStep[],
  body: Signature<R>,
): Signature<R> {
  const headerDict = header instanceof Group
    ? canvasDict(header)
    : groupSignature(header.map(canvasDict));
  return new Signature<R>(body.app, chordSignature(headerDict, canvasDict(body)));
}
