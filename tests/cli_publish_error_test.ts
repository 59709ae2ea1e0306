/**
 * `call`'s advice for a publish that gave up on a broker down ("then run
 * call again") goes by the error's `publishTries`, which the publish retry
 * sets where it gives up and which survives the errors made from it, not by
 * the words of its hint. No server: the publishes fail by themselves.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError, withUrlSource } from "../src/broker/errors.ts";
import { DEFAULT_PUBLISH_RETRY_POLICY, publishRetrying } from "../src/client/publish_retry.ts";
import { cliPublishError } from "../src/cli/call.ts";

const URL = "redis://127.0.0.1:1/0";
const CLI_HINT = /Check that the broker runs and the URL is right, then run call again/;

/** A publish that always fails as a broker down does. */
const down = () =>
  Promise.reject(new BrokerConnectionError(URL, new Error("connect ECONNREFUSED")));

/** What `publishRetrying` rejects with, for the policy and the signal given. */
async function gaveUp(
  policy: typeof DEFAULT_PUBLISH_RETRY_POLICY,
  closed?: AbortSignal,
): Promise<BrokerConnectionError> {
  const err = await publishRetrying(down, policy, closed).then(() => null, (e) => e);
  assert.ok(err instanceof BrokerConnectionError, String(err));
  return err;
}

Deno.test("cli publish error: a publish that used up its retries is marked with its tries", async () => {
  const err = await gaveUp({ ...DEFAULT_PUBLISH_RETRY_POLICY, maxRetries: 2, intervalStep: 0 });
  assert.equal(err.publishTries, 3);
  const advised = cliPublishError(err, true);
  assert.ok(advised instanceof BrokerConnectionError);
  assert.match(advised.message, CLI_HINT);
  assert.match(advised.message, /\(set by the command line's -b\/--broker\)/);
  assert.doesNotMatch(advised.message, /taskPublishRetryPolicy/);
  assert.equal(advised.publishTries, 3);
});

Deno.test("cli publish error: a publish whose wait app.close() ended gets the advice too", async () => {
  // Its hint names no taskPublishRetryPolicy: the CLI matched those words and passed it on as it was.
  const closing = new AbortController();
  const policy = { ...DEFAULT_PUBLISH_RETRY_POLICY, maxRetries: 5, intervalStart: 60 };
  const failing = gaveUp(policy, closing.signal);
  await new Promise((ok) => setTimeout(ok, 50));
  closing.abort();
  const err = await failing;
  assert.doesNotMatch(err.hint, /taskPublishRetryPolicy/);
  assert.equal(err.publishTries, 1);
  const advised = cliPublishError(err, false);
  assert.ok(advised instanceof BrokerConnectionError);
  assert.match(advised.message, CLI_HINT);
});

Deno.test("cli publish error: the mark survives withUrlSource", async () => {
  const err = await gaveUp({ ...DEFAULT_PUBLISH_RETRY_POLICY, maxRetries: 0 });
  const sourced = withUrlSource(err, "CELERY_BROKER_URL");
  assert.ok(sourced instanceof BrokerConnectionError && sourced !== err);
  assert.match(sourced.message, /\(set by CELERY_BROKER_URL\)/);
  assert.equal(sourced.publishTries, 1);
  assert.match((cliPublishError(sourced, false) as Error).message, CLI_HINT);
});

Deno.test("cli publish error: another connection error is passed on as it is, whatever its hint says", () => {
  // Its hint names taskPublishRetryPolicy, but no publish gave up: the CLI rewrote it.
  const err = new BrokerConnectionError(URL, new Error("WRONGPASS"), {
    hint: "Set the password in the URL; taskPublishRetryPolicy cannot help with this",
    transient: false,
  });
  assert.equal(err.publishTries, undefined);
  assert.equal(cliPublishError(err, true), err);
  // A broker down that was not retried (taskPublishRetry: false) is no publish that gave up either.
  const plain = withUrlSource(
    new BrokerConnectionError(URL, new Error("connect ECONNREFUSED")),
    "CELERY_BROKER_URL",
  );
  assert.equal(cliPublishError(plain, true), plain);
});
