/** The monitoring example runs with the permissions its header gives. */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("examples: monitor.ts follows events and inspects, with narrow permissions", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "examples/monitor.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, text + new TextDecoder().decode(out.stderr));
  assert.match(text, /SUCCESS {2}tasks\.add\(2, 3\) -> 5/);
  assert.match(text, /FAILURE {2}tasks\.fail\('on purpose',\) -> RangeError\('on purpose'\)/);
  assert.match(text, /worker example@\S+ alive, software celeriac/);
  assert.match(text, /tasks run: \{"tasks\.add":1,"tasks\.fail":1\}/);
  assert.match(text, /ping: \[\{"example@\S+":\{"ok":"pong"\}\}\]/);
  assert.match(text, /sum = 5/);
});
