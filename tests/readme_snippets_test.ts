/**
 * The README reads as one project: its TypeScript snippets import the
 * package by the same specifier (`jsr:@celeriac/celeriac…`, which a project
 * runs without an import map), and the command it gives for an example is
 * the one in that example's header.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", ROOT));

Deno.test("readme: every snippet imports the package as jsr:@celeriac/celeriac", () => {
  const specifiers = [...readme.matchAll(/from "([^"]*@celeriac\/celeriac[^"]*)"/g)].map((m) =>
    m[1]
  );
  assert.ok(specifiers.length > 5, "snippets found");
  const other = specifiers.filter((s) => !s.startsWith("jsr:@celeriac/celeriac"));
  assert.deepEqual(other, [], "snippets importing the package another way");
});

Deno.test("readme: an example's command is the one in its header", async () => {
  const commands = new Map<string, string[]>();
  for (
    const [, flags, name] of readme.matchAll(/deno run ((?:--[\w=.,:-]+ )*)examples\/(\w+)\.ts/g)
  ) {
    commands.set(name, [...commands.get(name) ?? [], flags]);
  }
  assert.ok(commands.size > 3, "example commands found");
  for (const [name, flags] of commands) {
    const source = await Deno.readTextFile(new URL(`examples/${name}.ts`, ROOT));
    const header = new RegExp(`deno run ((?:--[\\w=.,:-]+ )*)examples/${name}\\.ts`).exec(source);
    if (header) {
      assert.ok(
        flags.includes(header[1]),
        `examples/${name}.ts: "${header[1]}" vs the README's ${flags}`,
      );
    }
  }
});
