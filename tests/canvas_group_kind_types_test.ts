/**
 * Types of groups by what they wrap (review 39 #2): `deno check` fails on
 * this file when a `task.chunks()` Group or a chain ending in a group is
 * typed as flattened into an enclosing group (at run time only
 * `celery.group` dicts are), or a chain ending in chunks as possibly a
 * Signature. The run-time shapes are checked by canvas_client_test and the
 * interop tests; here the test body only builds the canvases.
 */

import assert from "node:assert/strict";
import { Celery, chain, group, type ResultOf, Signature } from "../mod.ts";

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<G>() => G extends A ? 1 : 2) extends (<G>() => G extends B ? 1 : 2) ? true
  : false;
/** Compiles only for `true`. */
function assertType<T extends true>(_ok?: T): void {}

Deno.test("canvas types: only group() groups are flattened into a group; chunks and chains ending in a group are one member", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const add = app.task("t.add", (a: number, b: number) => a + b);
  const fmt = app.task("t.fmt", (n: number) => `n=${n}`);

  const flat = group([group([add.s(1, 1), add.s(2, 2)]), fmt.s(3)]);
  assertType<Equal<ResultOf<typeof flat>, [number, number, string]>>();

  const withChain = group([chain(add.s(1, 1), group([add.s(1), add.s(2)])), fmt.s(3)]);
  assertType<Equal<ResultOf<typeof withChain>, [[number, number], string]>>();

  const withChunks = group([add.chunks([[1, 1], [2, 2], [3, 3]], 2), fmt.s(1)]);
  assertType<Equal<ResultOf<typeof withChunks>, [number[][], string]>>();

  // A chunks step is never unrolled: no Signature arm.
  const endsInChunks = chain(add.s(1, 1), add.chunks([[1, 1]], 1));
  assertType<Equal<Extract<typeof endsInChunks, Signature<unknown>>, never>>();
  assertType<Equal<ResultOf<typeof endsInChunks>, number[][]>>();

  // A chain (not a group) first: the group of one after it is its member, as Celery.
  const nested = chain(chain(group([add.s(1, 1), add.s(2, 2)])), group([add.s(3)]));
  assertType<Equal<typeof nested, Signature<number>>>();
  assert.equal(nested instanceof Signature, true);
  await app.close();
});
