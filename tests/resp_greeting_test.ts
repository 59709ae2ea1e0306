/**
 * What a RESP connection says on connect (resp_greeting.ts), and which
 * replies fail it: HELLO 3 refused leaves it in RESP2, anything else refused
 * fails the connect.
 */

import assert from "node:assert/strict";
import { greeting, greetingFailure } from "../src/broker/resp_greeting.ts";
import { RedisReplyError } from "../src/broker/resp_reader.ts";
import { RedisConnectionError } from "../src/broker/resp_dial.ts";

const at = { host: "127.0.0.1", port: 6379 };

Deno.test("resp greeting: AUTH, HELLO 3, SELECT, SETNAME, then the subscriptions, in order", () => {
  assert.deepEqual(
    greeting({
      ...at,
      username: "app",
      password: "pw",
      resp3: true,
      db: 3,
      name: "celeriac-results",
      patterns: ["/0.celeryev/*"],
      channels: () => ["celery-task-meta-a"],
    }),
    {
      commands: [
        ["AUTH", "app", "pw"],
        ["HELLO", "3"],
        ["SELECT", "3"],
        ["CLIENT", "SETNAME", "celeriac-results"],
        ["PSUBSCRIBE", "/0.celeryev/*"],
        ["SUBSCRIBE", "celery-task-meta-a"],
      ],
      hello: 1,
    },
  );
  // db 0 is the server's default: no SELECT; nothing to say is a PING.
  assert.deepEqual(greeting({ ...at, db: 0 }), { commands: [["PING"]], hello: -1 });
  assert.deepEqual(greeting({ ...at, password: "" }).commands, [["AUTH", ""]]);
});

Deno.test("resp greeting: only HELLO's error reply is forgiven", () => {
  const ok = { status: "fulfilled", value: "OK" } as const;
  const refused = (reason: Error) => ({ status: "rejected", reason }) as const;
  const unknown = refused(new RedisReplyError("ERR unknown command 'HELLO'"));
  assert.equal(greetingFailure([ok, unknown], 1), undefined);
  // The same error on AUTH (index 0) fails the connect; so does a lost connection on HELLO.
  assert.equal(greetingFailure([unknown, ok], 1), unknown);
  const lost = refused(new RedisConnectionError("closed"));
  assert.equal(greetingFailure([ok, lost], 1), lost);
  assert.equal(greetingFailure([ok, unknown], -1), unknown);
});
