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
 * A complete policy from the fields given, the others Celery's defaults.
 *
 * @example
 * ```ts
 * import { resolvePublishRetryPolicy } from "@celeriac/celeriac/protocol";
 * resolvePublishRetryPolicy({ maxRetries: 10 }).intervalMax; // 0.2
 * ```
 *
 * @param given the fields set
 * @returns the policy
 * @throws {RangeError} for a negative or non-numeric field, or a fractional `maxRetries`
 */
export function resolvePublishRetryPolicy(
  given: Partial<PublishRetryPolicy> = {},
): PublishRetryPolicy {
  const policy = { ...DEFAULT_PUBLISH_RETRY_POLICY, ...given };
  for (const [name, value] of Object.entries(policy)) {
    if (typeof value !== "number" || !(value >= 0)) {
      throw new RangeError(`taskPublishRetryPolicy.${name} must be a number >= 0`);
    }
  }
  if (!Number.isInteger(policy.maxRetries)) {
    throw new RangeError("taskPublishRetryPolicy.maxRetries must be a whole number");
  }
  return policy;
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
 *   saying so and what to change
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
      if (closed?.aborted) throw gaveUp(err, `${tried}, then app.close() ended the wait`, "");
    }
  }
}

/** The last error, saying how the publish was tried; its reason and hint kept. */
function gaveUp(err: BrokerConnectionError, tried: string, more: string): BrokerConnectionError {
  const reason = err.reason ?? (err.cause instanceof Error ? err.cause.message : err.message);
  return new BrokerConnectionError(err.url, err, {
    reason: `${reason.replace(/\.+$/, "")}; ${tried}`,
    hint: `${err.hint.replace(/\.+$/, "")}${more}`,
  });
}
