/**
 * Retrying a publish the broker could not take because it was unreachable,
 * as Celery does by default (`task_publish_retry`,
 * `task_publish_retry_policy`): a short restart of the broker does not lose
 * a `delay()`.
 *
 * @module
 */

import { BrokerConnectionError } from "../broker/errors.ts";
import { sleep } from "../broker/sleep.ts";
import { closestOptionName } from "./call_option_names.ts";

/**
 * How a publish is retried while the broker is unreachable
 * [`task_publish_retry_policy`], in seconds.
 *
 * @example Riding out a broker restart of up to about 5 s
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({
 *   broker: "kv://:memory:",
 *   taskPublishRetryPolicy: { maxRetries: 10, intervalStep: 0.5, intervalMax: 1 },
 * });
 * ```
 */
export interface PublishRetryPolicy {
  /** Retries after the first try [`max_retries`]. Default 3. */
  maxRetries: number;
  /** Wait before the first retry [`interval_start`]. Default 0. */
  intervalStart: number;
  /** Added to the wait at each retry [`interval_step`]. Default 0.2. */
  intervalStep: number;
  /** The longest wait between two tries [`interval_max`]. Default 0.2. */
  intervalMax: number;
}

/**
 * Celery's default `task_publish_retry_policy`.
 *
 * @example
 * ```ts
 * import { DEFAULT_PUBLISH_RETRY_POLICY } from "@celeriac/celeriac/protocol";
 * DEFAULT_PUBLISH_RETRY_POLICY.maxRetries; // 3
 * ```
 */
export const DEFAULT_PUBLISH_RETRY_POLICY: Readonly<PublishRetryPolicy> = Object.freeze({
  maxRetries: 3,
  intervalStart: 0,
  intervalStep: 0.2,
  intervalMax: 0.2,
});

/**
 * A complete policy from the fields given, the others `base`'s (by default
 * Celery's defaults).
 *
 * @example
 * ```ts
 * import { resolvePublishRetryPolicy } from "@celeriac/celeriac/protocol";
 * resolvePublishRetryPolicy({ maxRetries: 10 }).intervalMax; // 0.2
 * ```
 *
 * @param given the fields set
 * @param base the fields not set; default {@link DEFAULT_PUBLISH_RETRY_POLICY}
 * @param name what the policy is called in errors; default `"taskPublishRetryPolicy"`
 * @returns the policy
 * @throws {RangeError} for a negative or non-numeric field, or a fractional `maxRetries`
 * @throws {TypeError} for a field that is no field of a policy (`max_retries`), naming the one meant
 */
export function resolvePublishRetryPolicy(
  given: Partial<PublishRetryPolicy> = {},
  base: Readonly<PublishRetryPolicy> = DEFAULT_PUBLISH_RETRY_POLICY,
  name = "taskPublishRetryPolicy",
): PublishRetryPolicy {
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw new TypeError(`${name} must be an object, e.g. { maxRetries: 10, intervalMax: 1 }`);
  }
  const fields = Object.keys(DEFAULT_PUBLISH_RETRY_POLICY);
  for (const key of Object.keys(given)) {
    if (fields.includes(key)) continue;
    const guess = closestOptionName(key, fields);
    throw new TypeError(
      `${name} has no field "${key}"${guess ? ` (did you mean "${guess}"?)` : ""}: ` +
        `the fields are ${fields.join(", ")}`,
    );
  }
  const policy = { ...base, ...given };
  for (const [field, value] of Object.entries(policy)) {
    if (typeof value !== "number" || !(value >= 0)) {
      throw new RangeError(`${name}.${field} must be a number >= 0`);
    }
  }
  if (!Number.isInteger(policy.maxRetries)) {
    throw new RangeError(`${name}.maxRetries must be a whole number`);
  }
  return policy;
}

/**
 * How one call's publish is retried: its `retry` and `retryPolicy` over the
 * app's `taskPublishRetry` and `taskPublishRetryPolicy`, as Celery merges
 * `apply_async(retry=..., retry_policy=...)` over its settings.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { publishRetryPolicyOf } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * publishRetryPolicyOf(app.config, { retryPolicy: { maxRetries: 10 } })?.maxRetries; // 10
 * publishRetryPolicyOf(app.config, { retry: false }); // null
 * ```
 *
 * @param app the app's settings
 * @param call the call's options
 * @returns the policy, or null for no retry
 * @throws {TypeError} for a `retry` that is not a boolean, or a policy field that is none
 * @throws {RangeError} for a policy field out of range
 */
export function publishRetryPolicyOf(
  app: { readonly taskPublishRetry: boolean; readonly taskPublishRetryPolicy: PublishRetryPolicy },
  call: { readonly retry?: boolean; readonly retryPolicy?: Partial<PublishRetryPolicy> } = {},
): PublishRetryPolicy | null {
  const { retry = app.taskPublishRetry, retryPolicy } = call;
  if (typeof retry !== "boolean") {
    throw new TypeError(`call option retry must be true or false; got ${typeof retry}`);
  }
  if (!retry) return null;
  if (retryPolicy === undefined) return app.taskPublishRetryPolicy;
  return resolvePublishRetryPolicy(retryPolicy, app.taskPublishRetryPolicy, "retryPolicy");
}

/**
 * Run `publish`; while it fails because the broker is unreachable (a
 * transient {@link BrokerConnectionError}), wait as `policy` says and run
 * it again, at most `policy.maxRetries` times. Other errors are thrown at
 * once, as is everything when `policy` is null (`taskPublishRetry: false`).
 * A wait is ended by `closed` (the app closes): the publish fails then.
 *
 * A publish whose reply was lost (the connection dropped after the broker
 * took it) is sent again: the task may be delivered twice, as with kombu.
 *
 * @example
 * ```ts ignore
 * await publishRetrying(() => broker.publish(message, target), app.config.taskPublishRetryPolicy);
 * ```
 *
 * @param publish the publish
 * @param policy how to retry; null for not at all
 * @param closed ends a wait between two tries
 * @throws {BrokerConnectionError} once the retries are used up or `closed` ended a wait,
 *   saying so and what to change, its `publishTries` the number of tries
 */
export async function publishRetrying(
  publish: () => Promise<void>,
  policy: PublishRetryPolicy | null,
  closed?: AbortSignal,
): Promise<void> {
  const start = Date.now();
  for (let retries = 0;; retries++) {
    try {
      return await publish();
    } catch (err) {
      if (!(err instanceof BrokerConnectionError) || !err.transient || !policy) throw err;
      const tried = `the publish was tried ${retries + 1} time(s) over ${
        ((Date.now() - start) / 1000).toFixed(1)
      } s`;
      if (retries >= policy.maxRetries) {
        throw gaveUp(
          err,
          retries + 1,
          tried,
          "; or let publishes ride out a longer outage with taskPublishRetryPolicy " +
            "(Celery's task_publish_retry_policy), e.g. { maxRetries: 10, intervalMax: 1 }",
        );
      }
      const wait = Math.min(
        policy.intervalStart + retries * policy.intervalStep,
        policy.intervalMax,
      );
      await sleep(wait * 1000, closed);
      if (closed?.aborted) {
        throw gaveUp(err, retries + 1, `${tried}, then app.close() ended the wait`, "");
      }
    }
  }
}

/**
 * The last error, saying how the publish was tried and marked with the number of tries
 * (`publishTries`); its reason, hint and URL's source kept.
 */
function gaveUp(
  err: BrokerConnectionError,
  tries: number,
  tried: string,
  more: string,
): BrokerConnectionError {
  const reason = err.reason ?? (err.cause instanceof Error ? err.cause.message : err.message);
  return new BrokerConnectionError(err.url, err, {
    reason: `${reason.replace(/\.+$/, "")}; ${tried}`,
    hint: `${err.hint.replace(/\.+$/, "")}${more}`,
    source: err.source,
    permission: err.permission,
    publishTries: tries,
  });
}
