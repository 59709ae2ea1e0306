/**
 * A process that waits on a KV file keeps its writes visible to the other
 * processes on that file after one of them has come and gone.
 *
 * SQLite knows that other connections are open from their POSIX locks on
 * the database file and its `-shm`; a process drops all of its locks on a
 * file when it closes any descriptor of that file. Deno 2.9's `watchFs`
 * opens and closes the paths of the events it reports, so a watch of the
 * database's directory dropped the waiting process's locks at the first
 * commit of another process; that process, closing, then took itself for
 * the last connection and deleted the write-ahead log, and everything the
 * waiting process committed afterwards went to the deleted file (a worker
 * ran tasks whose results and acknowledgements no other process ever saw).
 */

import assert from "node:assert/strict";
import { openKvBroker } from "../src/broker/kv.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { KV_PUBLISH_SCRIPT, KV_TAKE_SCRIPT } from "./helpers/kv_scripts.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function runScript(dir: string, name: string, source: string, args: string[]) {
  const script = `${dir}/${name}.ts`;
  await Deno.writeTextFile(script, source);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `${name}.ts failed:\n${stderr}`);
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("kv: writes after another process opened and closed the file reach other processes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-xproc-" });
  const url = `kv://${dir}/db.sqlite`;
  const broker = await openKvBroker(url);
  try {
    for (let round = 1; round <= 3; round++) {
      const inbox = uniqueQueue("inbox");
      const outbox = uniqueQueue("outbox");
      const waiting = broker.take([inbox], { max: 1, signal: AbortSignal.timeout(15_000) });
      await runScript(dir, "publish", KV_PUBLISH_SCRIPT, [url, inbox]);
      const got = await waiting;
      assert.equal(got.length, 1, `round ${round}: the waiting take was not woken`);
      await broker.ack(got);
      await broker.publish(message("from the waiting process"), { routingKey: outbox });
      const seen = await runScript(dir, "take", KV_TAKE_SCRIPT, [url, outbox]);
      assert.equal(seen, "from the waiting process", `round ${round}: not seen by another process`);
    }
  } finally {
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
