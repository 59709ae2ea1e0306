/**
 * The command line's answers to a new user's usual `--app` mistakes: an app
 * module with a syntax error, one the process may not read, and Celery's
 * dotted module name (`-A proj.tasks`) where a path is expected.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadApp } from "../src/worker/load_app.ts";
import { runCli } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** A directory of the test's own outside the repository, removed after `fn`. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-cli-app-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli app errors: a syntax error is said as one, with its place once", async () => {
  await withTempDir(async (dir) => {
    const app = join(dir, "tasks.ts");
    await Deno.writeTextFile(
      app,
      `import { Celery } from "${ROOT}mod.ts";\n` +
        "export const app = new Celery();\n" +
        'export const add = app.task("tasks.add", (a: number, b: number) => a + b;\n',
    );
    const out = await runCli(["--app", app, "-b", "kv://:memory:"]);
    assert.equal(out.code, 2);
    // Was "importing the app module failed: TypeError: SyntaxError: ..." with
    // the place twice: "at file://…/tasks.ts:3:73 (at file://…/tasks.ts:3:73)".
    assert.match(
      out.stderr,
      new RegExp(`^error: --app ${app}: syntax error: Expected ',', got ';'`),
    );
    assert.doesNotMatch(out.stderr, /TypeError/);
    assert.equal(out.stderr.split(`${app}:3:73`).length - 1, 1, out.stderr);
  });
});

Deno.test("cli app errors: an app module out of read reach names the flag, not Celeriac's loader", async () => {
  await withTempDir(async (dir) => {
    const app = join(dir, "tasks.ts");
    await Deno.writeTextFile(app, "export const app = 1;\n");
    const out = await runCli(["--app", app, "-b", "kv://:memory:"], {
      permissions: ["--allow-read=.", "--allow-env"],
    });
    assert.equal(out.code, 2);
    assert.match(out.stderr, /^error: --app .*tasks\.ts: importing the app module failed: /);
    assert.match(out.stderr, /Requires read access to .*tasks\.ts".*--allow-read/);
    // Was "(at async loadApp (file:///…/src/worker/load_app.ts:60:15))":
    // the place of Celeriac's own import, not of anything in the app.
    assert.doesNotMatch(out.stderr, /load_app\.ts/);
  });
});

Deno.test("cli app errors: Celery's dotted module name gets the path it meant", async () => {
  // `celery -A examples.tasks` names a Python module; --app takes a path.
  for (const spec of ["examples.tasks", "examples/tasks"]) {
    const out = await runCli(["--app", spec, "-b", "kv://:memory:"]);
    assert.equal(out.code, 2);
    assert.match(
      out.stderr,
      new RegExp(
        `^error: --app ${spec}: no module at .*\\(did you mean --app \\./examples/tasks\\.ts\\? --app takes a file path or URL, not a Python module name\\)`,
      ),
    );
  }
  const none = await runCli(["--app", "no.such.module", "-b", "kv://:memory:"]);
  assert.equal(none.code, 2);
  assert.doesNotMatch(none.stderr, /did you mean/);
  // Celery's `-A proj.tasks:app` (module:attribute) was read as a URL of scheme "examples.tasks":
  // "no module at examples.tasks:app", and no hint.
  const attribute = await runCli(["--app", "examples.tasks:app", "-b", "kv://:memory:"]);
  assert.equal(attribute.code, 2);
  assert.match(
    attribute.stderr,
    /\(did you mean --app \.\/examples\/tasks\.ts:app\? --app takes a file path or URL, not a Python module name\)/,
  );
  // Still read as a URL, where it said "no module at examples.tasks:app"; now a path from here.
  assert.match(
    attribute.stderr,
    new RegExp(`no module at file://${ROOT}examples\\.tasks:app \\(a relative path starts from`),
  );
});

Deno.test("cli app errors: --app module:name naming no app says what the module exports one as", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, body: string) => {
      const path = join(dir, name);
      await Deno.writeTextFile(path, `import { Celery } from "${ROOT}mod.ts";\n${body}`);
      return path;
    };
    const one = await write(
      "one.ts",
      "export const app = new Celery({ broker: 'kv://:memory:' });\n",
    );
    // Said only: has no Celery app exported as "myapp".
    const out = await runCli(["--app", `${one}:myapp`, "-b", "kv://:memory:"]);
    assert.equal(out.code, 2);
    assert.match(
      out.stderr,
      /^error: file:\/\/\S*one\.ts has no Celery app exported as "myapp": it exports one as app\. Name it after the ":" \(:app\) or leave ":myapp" out\n/,
    );
    const two = await write(
      "two.ts",
      "export const a1 = new Celery({ broker: 'kv://:memory:' });\n" +
        "export const a2 = new Celery({ broker: 'kv://:memory:' });\n",
    );
    await assert.rejects(
      loadApp(`file://${two}`, "myapp"),
      /has no Celery app exported as "myapp": it exports 2, as a1, a2\. Name one after the ":" \(:a1\)$/,
    );
    const none = await write("none.ts", "export const x = 1;\n");
    await assert.rejects(
      loadApp(`file://${none}`, "myapp"),
      /has no Celery app exported as "myapp", nor under any other name: `export const myapp = new Celery\(\.\.\.\)`$/,
    );
  });
});
