/**
 * The benchmarks depend on no test file: bench/ is run on its own (and from a
 * checkout without the tests' helpers in mind), so what both need lives in
 * tools/ or src/. bench/rtt_breakdown.ts imported tests/helpers/redis_monitor.ts.
 */

import assert from "node:assert/strict";

Deno.test("bench: no benchmark imports from tests/", async () => {
  const bench = new URL("../bench/", import.meta.url);
  const importers: string[] = [];
  for await (const entry of Deno.readDir(bench)) {
    if (!entry.isFile || !/\.tsx?$/.test(entry.name)) continue;
    const text = await Deno.readTextFile(new URL(entry.name, bench));
    // Static and dynamic imports, and re-exports, of a path through tests/.
    if (/(?:from\s*|import\s*\(\s*)["'](?:\.\.\/)+tests\//.test(text)) importers.push(entry.name);
  }
  assert.deepEqual(importers, []);
});
