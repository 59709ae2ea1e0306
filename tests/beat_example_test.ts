/** examples/periodic.ts runs as its header says, with narrow permissions. */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("examples: periodic tasks run by worker -B, listed by beat --list", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-periodic-example-" });
  const env = { CELERY_BROKER_URL: `kv://${dir}/broker.sqlite` };
  const perms = [`--allow-read=.,${dir}`, `--allow-write=${dir}`, "--allow-env"];
  try {
    const worker = Proc.start("worker -B", Deno.execPath(), [
      "run",
      ...perms,
      "worker.ts",
      "worker",
      "-B",
      "--app",
      "./examples/periodic.ts",
      "-c",
      "1",
      "--loglevel",
      "INFO",
    ], { env });
    try {
      await worker.waitFor(/hello, beat[^]*hello, beat/, 20_000);
    } finally {
      await worker.stop();
    }
    assert.match(worker.output, /Sending due task hello-every-2s \(periodic\.hello\) id /);
    assert.match(worker.output, /Task periodic\.hello\[[0-9a-f-]{36}\] succeeded/);

    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...perms, "worker.ts", "beat", "--list", "--app", "./examples/periodic.ts"],
      env,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const table = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.match(table, /hello-every-2s\s+periodic\.hello\s+every 2s\s+\S+Z\s+\S+Z\s+[2-9]/);
    assert.match(
      table,
      /nightly-cleanup\s+periodic\.cleanup\s+crontab 0 3 \* \* mon-fri \(Europe\/Berlin\)\s+-\s+\S+T0[12]:00:00\.000Z\s+0/,
    );
    assert.match(table, /python-report\s+reports\.weekly\s+crontab 0 8 \* \* mon/);
    assert.match(table, /3 entries; leader: none/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
