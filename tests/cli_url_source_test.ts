/**
 * A connection error of the command line names the flag a URL came from, the same way for every
 * command and every failure: `-b` → "the command line's -b/--broker", `--backend` → "the command
 * line's --backend" (the admin commands said "the app's broker option", `call` only after
 * retrying a publish, and a wrong password "the app's option" everywhere).
 */

import assert from "node:assert/strict";
import { runCli } from "./helpers/procs.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";

const BY_B = /\(set by the command line's -b\/--broker\)\n/;
const COMMANDS = [
  ["status"],
  ["inspect", "ping"],
  ["control", "enable_events"],
  ["purge", "-f", "-Q", "cli-url-source"],
  ["parked"],
  ["events", "--dump"],
  ["call", "t.add"],
];

async function refused(args: string[]): Promise<string> {
  const out = await runCli(args);
  assert.equal(out.code, 69, `${args.join(" ")}: ${out.stdout}${out.stderr}`);
  return out.stderr;
}

Deno.test("cli: a broker from -b that nothing serves is said to come from -b, by every command", async () => {
  for (const command of COMMANDS) {
    const err = await refused([...command, "-b", "redis://127.0.0.1:1/0"]);
    assert.match(err, /Cannot connect to redis:\/\/127\.0\.0\.1:1\/0/);
    assert.match(err, BY_B, command.join(" "));
  }
  const dir = await Deno.makeTempDir({ prefix: "celeriac-url-source-" });
  try {
    const err = await refused(
      ["result", "abc", "-b", `kv://${dir}/b.db`, "--backend", "redis://127.0.0.1:1/0"],
    );
    assert.match(err, /\(set by the command line's --backend\)\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a wrong password in -b is said to come from -b, by every command", async () => {
  const server = await PrivateRedis.start(["--requirepass", "sekret"]);
  try {
    for (
      const [url, why] of [
        [`redis://:wrong@127.0.0.1:${server.port}/0`, /password is wrong \(WRONGPASS/],
        [`redis://127.0.0.1:${server.port}/0`, /requires a password and none was given \(NOAUTH/],
      ] as const
    ) {
      for (const command of COMMANDS) {
        const err = await refused([...command, "-b", url]);
        assert.match(err, why, command.join(" "));
        assert.match(err, BY_B, `${command.join(" ")}: ${err}`);
      }
    }
  } finally {
    await server.close();
  }
});
