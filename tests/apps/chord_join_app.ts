/**
 * A worker's join of one chord member, alone in a process that a test can
 * kill at the moment it chooses (tests/chord_claim_crash_test.ts): member 0
 * of chord `<group>` (succeeded with 1) joins through `joinChords` with the
 * Redis result backend at `<url>`; the body is `t.sum` with task id
 * `<body id>`. Prints "joined" when the join is done.
 *
 * Usage: deno run -A tests/apps/chord_join_app.ts <redis url> <group> <body id>
 */

import { openRedisBackend } from "../../src/backend/redis.ts";
import { joinChords } from "../../src/worker/canvas_send.ts";
import { chordPart } from "../helpers/chord_keys.ts";
import { taskSig } from "../helpers/signatures.ts";

const [url, group, bodyId] = Deno.args;
const backend = await openRedisBackend(url);
await joinChords([{
  part: chordPart(group, 0),
  body: taskSig("t.sum", bodyId),
  parent: { id: "member-0", rootId: "root", origin: "test@host", defaultQueue: "celery" },
}], { backend, publish: () => Promise.resolve() });
await Deno.stdout.write(new TextEncoder().encode("joined\n"));
await backend.close();
