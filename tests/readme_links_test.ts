/**
 * The README is the package's page on jsr.io, where a relative link resolves
 * inside the published package: each must name a file `publish.include`
 * ships (the dashboard screenshots, the examples), else it is a 404 there.
 * bench/ and tests/ are not shipped, so the README names them as text.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

Deno.test("readme links: every relative link names a file the JSR package publishes", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const include: string[] = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)))
    .publish.include;
  const targets = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1])
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
  assert.ok(targets.includes("docs/img/dashboard-overview.png"), "the screenshots are linked");
  const unpublished = targets.filter((t) =>
    !include.some((p) => p.endsWith("/") ? t.startsWith(p) : t === p)
  );
  assert.deepEqual(unpublished, [], "linked from README.md but not in publish.include");
  for (const t of targets) await Deno.stat(new URL(t, ROOT)); // each exists
});
