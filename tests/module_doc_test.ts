/**
 * The package's module doc (mod.ts) names the members of its classes as
 * they are: `state()` for a method, `state` for a property (it said
 * `state` for AsyncResult's `async state()`: a Celery user's `r.state`
 * gets a function, not a state).
 */

import assert from "node:assert/strict";
import * as mod from "../mod.ts";

const source = await Deno.readTextFile(new URL("../mod.ts", import.meta.url));
const moduleDoc = source.slice(0, source.indexOf("*/"));

Deno.test("module doc: the members it lists are methods where it writes name(), else not", () => {
  // "- {@link AsyncResult}: a sent task's result — `get()`, `state()`, … (a note)", over lines
  const items = [...moduleDoc.matchAll(/^ \* - \{@link (\w+)\}:([\s\S]*?)(?=\n \* -|\n \*\n)/gm)];
  const checked: string[] = [];
  for (const [, name, text] of items) {
    if (!text.includes("—")) continue;
    const members = text.slice(text.indexOf("—")).split(/\((?!\))/)[0];
    const cls = (mod as Record<string, unknown>)[name] as { prototype: Record<string, unknown> };
    assert.equal(typeof cls, "function", `${name} is exported`);
    const listed = [...members.matchAll(/`(\w+)(\(\))?`/g)];
    if (listed.length > 0) checked.push(name);
    for (const [, member, call] of listed) {
      const isMethod = typeof cls.prototype[member] === "function";
      assert.equal(
        isMethod,
        call !== undefined,
        `${name}.${member} is ${isMethod ? "a method: write it `" : "no method: write it `"}` +
          `${member}${isMethod ? "()" : ""}\``,
      );
    }
  }
  assert.deepEqual(checked, ["Task", "AsyncResult"], "the items that list members");
});
