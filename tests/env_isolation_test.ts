/**
 * `deno test --parallel` runs the test files as threads of one process:
 * they share `Deno.env`, and every subprocess one spawns inherits it. So no
 * test file sets or deletes a process environment variable; the cases that
 * must run in tests/helpers/env_cases.ts, each in a process of its own, or
 * in tests/helpers/cli_batch.ts, whose cases run in a `deno run` of their own.
 */

import assert from "node:assert/strict";

const TESTS = new URL("./", import.meta.url);
const ALLOWED = new Set(["helpers/env_cases.ts", "helpers/cli_batch.ts", "env_isolation_test.ts"]);

async function* sources(dir: URL, prefix = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory) yield* sources(new URL(`${entry.name}/`, dir), `${path}/`);
    else if (/\.(ts|js)$/.test(entry.name)) yield path;
  }
}

Deno.test("env isolation: no test file changes the environment the parallel files share", async () => {
  const offenders: string[] = [];
  for await (const path of sources(TESTS)) {
    if (ALLOWED.has(path)) continue;
    const text = await Deno.readTextFile(new URL(path, TESTS));
    const lines = text.split("\n").flatMap((line, i) =>
      /Deno\.env\.(set|delete)\(|process\.env\.\w+\s*=[^=]|delete process\.env/.test(line)
        ? [`tests/${path}:${i + 1}: ${line.trim()}`]
        : []
    );
    offenders.push(...lines);
  }
  assert.deepEqual(
    offenders,
    [],
    "set variables in tests/helpers/env_cases.ts (a process of its own), or pass `env` to a subprocess",
  );
});
