import assert from "node:assert/strict";
import { parseRedisUrl } from "../src/broker/redis_url.ts";

// Checked against Celery 5.2.6 and kombu (Python): for "sentinel://:pa@h1/3;sentinel://:pb@h2/5"
// the broker's virtual host and the SentinelBackend's db are 3 and the password "pa"; for
// "sentinel://h1;sentinel://:pb@h2/5" they are db 0 and no password: the first URL's, only.

Deno.test("redis sentinel url: database and credentials are the first URL's, as kombu reads them", () => {
  const o = parseRedisUrl(
    "sentinel://u1:pa@10.0.0.1:26379/3;sentinel://10.0.0.2:26379;sentinel://10.0.0.3?master_name=m",
  );
  assert.equal(o.db, 3);
  assert.equal(o.username, "u1");
  assert.equal(o.password, "pa");
  // A later URL may repeat them.
  const same = parseRedisUrl("sentinel://:pa@h1:26379/1;sentinel://:pa@h2:26379/1?master_name=m");
  assert.deepEqual([same.db, same.password], [1, "pa"]);
  // No path on the first URL is db 0 for kombu, so a later "/0" says the same.
  assert.equal(parseRedisUrl("sentinel://h1:26379;sentinel://h2:26379/0?master_name=m").db, 0);
});

Deno.test("redis sentinel url: a later URL naming another database or credentials is refused, with the form to write", () => {
  assert.throws(
    () =>
      parseRedisUrl(
        "sentinel://:pw@10.0.0.1:26379;sentinel://10.0.0.2:26379/1?master_name=mymaster",
      ),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.includes(
        'in "sentinel://10.0.0.2:26379/1?master_name=mymaster", not in its first',
      ) &&
      e.message.endsWith(
        'e.g. "sentinel://:***@10.0.0.1:26379/1;sentinel://10.0.0.2:26379?master_name=mymaster"',
      ) && !e.message.includes("pw"),
  );
  assert.throws(
    () => parseRedisUrl("sentinel://h1:26379/2;sentinel://h2:26379/3?master_name=m"),
    /e\.g\. "sentinel:\/\/h1:26379\/2;sentinel:\/\/h2:26379\?master_name=m"/,
  );
  assert.throws(
    () => parseRedisUrl("sentinel://h1:26379/0;sentinel://:other@h2:26379?master_name=m"),
    /e\.g\. "sentinel:\/\/:\*\*\*@h1:26379\/0;sentinel:\/\/h2:26379\?master_name=m"/,
  );
  assert.throws(
    () => parseRedisUrl("sentinel://:a@h1:26379;sentinel://u:a@h2:26379?master_name=m"),
    /e\.g\. "sentinel:\/\/u:\*\*\*@h1:26379;sentinel:\/\/h2:26379\?master_name=m"/,
  );
});

Deno.test("redis sentinel url: a comma-joined list says to write one sentinel:// URL per Sentinel, joined with ;", () => {
  assert.throws(
    () => parseRedisUrl("sentinel://:pw@h:27111,h:27112/0?master_name=m"),
    (e: Error) =>
      e.message.includes("one sentinel:// URL per Sentinel, joined with ;") &&
      e.message.endsWith('"sentinel://:***@h:27111/0;sentinel://h:27112?master_name=m"'),
  );
});

Deno.test("redis sentinel url: a comma inside the host (no port before it) gets the same advice", () => {
  // Before: both parsed to one Sentinel with host "h1,h2".
  for (
    const [url, advice] of [
      [
        "sentinel://h1,h2:26379/0?master_name=m",
        "sentinel://h1/0;sentinel://h2:26379?master_name=m",
      ],
      ["sentinel://h1,h2/0?master_name=m", "sentinel://h1/0;sentinel://h2?master_name=m"],
    ]
  ) {
    assert.throws(
      () => parseRedisUrl(url),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.includes("one sentinel:// URL per Sentinel, joined with ;") &&
        e.message.endsWith(`"${advice}"`),
      url,
    );
  }
});

Deno.test("redis sentinel url: an option two parts give different values is refused, the same value twice is not", () => {
  assert.throws(
    () =>
      parseRedisUrl("sentinel://h1:26379?master_name=r26;sentinel://h2:26379?master_name=other"),
    {
      name: "TypeError",
      message:
        /gives \?master_name= twice with different values \("r26" and "other"\): write it once/,
    },
  );
  const same = parseRedisUrl("sentinel://h1:26379?master_name=m;sentinel://h2:26379?master_name=m");
  assert.equal(same.masterName, "m");
  assert.deepEqual(same.sentinels?.map((s) => s.port), [26379, 26379]);
  const split = parseRedisUrl(
    "sentinel://h1:26379?sentinel_password=s;sentinel://h2?master_name=m",
  );
  assert.equal(split.masterName, "m");
  assert.equal(split.sentinelPassword, "s");
});
