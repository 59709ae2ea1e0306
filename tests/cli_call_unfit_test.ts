/**
 * `call` with `--app` checks the call against the app's definition of the
 * task as its worker would (keyword arguments placed by `params`, Python's
 * `TypeError`s) and warns when that worker would fail it; the task is sent
 * all the same, as Celery's `celery call` sends it unchecked.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { unfitCall } from "../src/cli/call.ts";

const APP = "./tasks.ts";

function app(): Celery {
  const a = new Celery({ broker: "kv://:memory:" });
  a.task("t.add", (x: number, y: number) => x + y);
  a.task("t.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);
  a.task("t.bound", { bind: true }, (ctx, x: number) => [x, ctx.kwargs]);
  a.task("t.none", () => 1);
  return a;
}

Deno.test("cli call unfit: keyword arguments to a handler without params are warned about", () => {
  // Sent without a word: the worker failed it later, the CLI had the definition that said so.
  const a = app();
  for (const name of ["t.add", "t.none"]) {
    const line = unfitCall(a, name, [], { x: 1 }, APP);
    assert.match(
      line ?? "",
      new RegExp(
        `^warning: ${name} of \\./tasks\\.ts cannot take this call: TypeError: ${name}\\(\\) got ` +
          "keyword argument\\(s\\) x, but its handler takes positional arguments only: declare " +
          `\\{ params: \\[\\.\\.\\.\\] \\} or \\{ bind: true \\} and read ctx\\.kwargs; sent anyway`,
      ),
    );
  }
});

Deno.test("cli call unfit: positional arguments missing or too many, a keyword not named", () => {
  const a = app();
  assert.match(
    unfitCall(a, "t.add", [1], {}, APP) ?? "",
    /missing 1 required positional argument: 'y'/,
  );
  assert.match(
    unfitCall(a, "t.none", [1], {}, APP) ?? "",
    /takes 0 positional arguments but 1 was given/,
  );
  assert.match(
    unfitCall(a, "t.mul", [], { x: 1, z: 2 }, APP) ?? "",
    /unexpected keyword argument 'z'/,
  );
});

Deno.test("cli call unfit: a call the definition takes, or no definition to check, says nothing", () => {
  const a = app();
  assert.equal(unfitCall(a, "t.add", [1, 2], {}, APP), undefined);
  assert.equal(unfitCall(a, "t.mul", [2], { y: 3 }, APP), undefined);
  assert.equal(
    unfitCall(a, "t.bound", [1], { tenant: "a" }, APP),
    undefined,
    "read from ctx.kwargs",
  );
  assert.equal(unfitCall(a, "t.other", [], { x: 1 }, APP), undefined, "not a task of the app");
  assert.equal(unfitCall(a, "t.add", [], { x: 1 }, undefined), undefined, "no --app");
});
