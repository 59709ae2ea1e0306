/**
 * `call` and `schedule add` with a task name the `--app` module does not
 * register (a typo, as `tasks.addd`): sent or stored anyway, since a Python
 * worker may serve it, but said on stderr with the closest registered name.
 */

import assert from "node:assert/strict";
import { runCli, scheduleAddArgs } from "./helpers/procs.ts";

// A KV file: on kv://:memory: call and schedule add also warn that no other process sees it.
const DIR = await Deno.makeTempDir({ prefix: "celeriac-task-names-" });
const BROKER = `kv://${DIR}/broker.db`;
const APP = ["--app", "./examples/tasks.ts", "-b", BROKER];
const ID = /^[0-9a-f-]{36}\n$/;

Deno.test("cli task names: call warns of a name the app does not register, and still sends it", async () => {
  const typo = await runCli(["call", "tasks.addd", ...APP, "--args", "[2, 3]"]);
  assert.equal(typo.code, 0, typo.stderr);
  assert.match(typo.stdout, ID, "stdout keeps only the id, for ID=$(... call ...)");
  // Was silent: the task was parked by the worker, seen only in its log.
  assert.match(
    typo.stderr,
    /^warning: tasks\.addd is not a task of \.\/examples\/tasks\.ts \(did you mean tasks\.add\?\); sent anyway, for a worker that has it \(a Python worker, another app\)\n$/,
  );
  const python = await runCli(["call", "py.report", ...APP]);
  assert.equal(python.code, 0, python.stderr);
  assert.match(
    python.stderr,
    /^warning: py\.report is not a task of \.\/examples\/tasks\.ts; sent/,
  );
  for (const known of ["tasks.add", "celery.chord_unlock"]) {
    const ok = await runCli(["call", known, ...APP, "--args", "[2, 3]"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, ID);
    assert.equal(ok.stderr, "", `${known} is known`);
  }
  const noApp = await runCli(["call", "tasks.addd", "-b", BROKER]);
  assert.equal(noApp.code, 0, noApp.stderr);
  assert.equal(noApp.stderr, "", "without --app there is no registry to compare with");
});

Deno.test("cli task names: schedule add warns of a task name the app does not register", async () => {
  const app = ["--app", "./examples/periodic.ts", "-b", BROKER];
  const typo = await runCli(scheduleAddArgs("periodic.helo", app));
  assert.equal(typo.code, 0, typo.stderr);
  assert.match(typo.stdout, /^Stored entry "hi"/);
  assert.match(
    typo.stderr,
    /^warning: periodic\.helo is not a task of \.\/examples\/periodic\.ts \(did you mean periodic\.hello\?\); stored anyway, for a worker that has it/,
  );
  // Its args fit hello(who): an entry hello could not take is refused (tests/beat_entry_args_test.ts).
  const ok = await runCli(scheduleAddArgs("periodic.hello", [...app, "--args", '["world"]']));
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, "");
});

Deno.test("cli task names: remove the KV file", async () => {
  await Deno.remove(DIR, { recursive: true });
});
