/**
 * Errors raised by transports. How a connection Deno refused for want of a
 * permission is explained is in denied.ts.
 *
 * @module
 */

import { deniedLookup, deniedPermission } from "./denied.ts";
import { wrongServerIn } from "./server_probe.ts";
import { maskPassword } from "./url_mask.ts";

export { maskPassword };

/**
 * The broker or result store cannot be reached, or dropped the connection.
 *
 * @example
 * ```ts
 * import { BrokerConnectionError } from "@celeriac/celeriac";
 * const err = new BrokerConnectionError("redis://127.0.0.1:6379/0", new Error("ECONNREFUSED"));
 * console.assert(err.code === "BROKER_CONNECTION");
 * ```
 */
export class BrokerConnectionError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BROKER_CONNECTION";
  /** The URL (password removed) that could not be reached. */
  readonly url: string;
  /**
   * Whether trying again later may succeed (the server is down or
   * unreachable), as opposed to a setting to change first (a wrong password,
   * a database that does not exist, Deno KV not enabled, a Deno permission).
   */
  readonly transient: boolean;
  /** What went wrong, in words (part of the message). */
  readonly reason: string | undefined;
  /** What to change or check (part of the message). */
  readonly hint: string;
  /**
   * Where the URL came from, as the message says it (`undefined`: not known
   * where the error was made, or only a permission is missing).
   */
  readonly source: string | undefined;
  /** Only a Deno permission is missing: the URL is right. */
  readonly permission: boolean;
  /**
   * How many times a publish was tried before it gave up on this error (its
   * publish retry policy used up, or `app.close()` ended a wait between two
   * tries): a caller that can do something about an outage (the command
   * line: run the command again) tells this error apart by it, not by its
   * words. `undefined` for every other connection error.
   */
  readonly publishTries: number | undefined;
  /**
   * What could not be done with the URL, as the message begins ("Cannot
   * <verb> <url>"): `connect to` (default), or `write` (a KV file on a full
   * or failing disk: there is nothing to connect to).
   */
  readonly verb: string;

  /**
   * Describe a server that cannot be reached.
   *
   * @param url the URL that failed (its password is masked in the message)
   * @param cause the underlying error
   * @param explained what went wrong in words (default: the cause's message),
   *   what to change (default: check that the server runs and the URL is right),
   *   and whether trying again may help (default true), and where the URL came
   *   from (default: not said: a transport knows only the URL it was given; the
   *   app, which knows, adds it with {@link withUrlSource}); a cause that is (or was
   *   caused by) a `WrongServerError` (another kind of server answered) says
   *   the first three instead (the source is kept); and `publishTries`, set
   *   only by a publish that gave up (default undefined), and `verb`: what
   *   could not be done with the URL (default "connect to")
   */
  constructor(
    url: string,
    cause?: unknown,
    explained: {
      reason?: string;
      hint?: string;
      transient?: boolean;
      permission?: boolean;
      source?: string;
      publishTries?: number;
      verb?: string;
    } = {},
  ) {
    const safe = maskPassword(url);
    const wrong = wrongServerIn(cause);
    const publishTries = explained.publishTries;
    const verb = explained.verb ?? "connect to";
    if (wrong) {
      explained = {
        reason: wrong.message,
        hint: wrong.hint,
        transient: false,
        source: explained.source,
      };
    } else if (explained.reason === undefined) {
      explained = deniedLookup(cause, url) ?? deniedPermission(cause) ?? explained;
    }
    const reason = explained.reason ?? (cause instanceof Error ? cause.message : undefined);
    const why = reason ? `: ${reason.replace(/\.+$/, "")}` : "";
    const hint = explained.hint ??
      "Check that the server runs and the URL is right";
    // Where the URL came from, unless only a Deno permission is missing (the URL is right).
    const source = explained.permission ? undefined : explained.source;
    super(`Cannot ${verb} ${safe}${why}. ${hint}${source ? ` (set by ${source})` : ""}`, {
      cause,
    });
    this.source = source;
    this.permission = explained.permission === true;
    this.publishTries = publishTries;
    this.verb = verb;
    this.name = "BrokerConnectionError";
    this.url = safe;
    this.transient = explained.transient ?? true;
    this.reason = reason;
    this.hint = hint;
  }
}

/**
 * `err` again, saying where its URL came from (the one place the user set
 * it): a transport's error names the URL alone, and the layer that chose the
 * URL (the app: its option, an environment variable or the default) adds
 * this once. Other errors, one that already says a source, and a missing
 * Deno permission (the URL is right) are returned as they are.
 *
 * @example
 * ```ts
 * import { BrokerConnectionError, withUrlSource } from "./errors.ts";
 * const err = new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("refused"));
 * (withUrlSource(err, "CELERY_BROKER_URL") as Error).message;
 * // "Cannot connect to redis://127.0.0.1:1/0: refused. Check that the server runs and the URL
 * // is right (set by CELERY_BROKER_URL)"
 * ```
 *
 * @param err what a connection failed with
 * @param source where its URL came from, in words (none: `err` as it is)
 * @param unreadDefault the URL is a default used only because Deno's
 *   permissions kept its variable from being read, which may or may not be
 *   set: the source (which says so) comes first, then the missing
 *   permission's flag as the way to use the default
 * @returns the error to throw
 */
export function withUrlSource(
  err: unknown,
  source: string | undefined,
  unreadDefault = false,
): unknown {
  if (unreadDefault && source && err instanceof BrokerConnectionError && err.permission) {
    return new BrokerConnectionError(err.url, err.cause, {
      // Deno's "run again with the --allow-write flag" would only make the default work.
      reason: err.reason?.replace(/, run again with the --allow-\w+ flag/, ""),
      // Without env permission nobody knows whether the variable is set: advise both.
      hint: err.hint
        ? `That URL is ${source}; to use the default, ${err.hint[0].toLowerCase()}${
          err.hint.slice(1)
        }`
        : `That URL is ${source}`,
      transient: false,
      permission: true,
      publishTries: err.publishTries,
    });
  }
  if (
    !(err instanceof BrokerConnectionError) || err.permission || err.source !== undefined ||
    !source
  ) {
    return err;
  }
  return new BrokerConnectionError(err.url, err.cause, {
    reason: err.reason,
    hint: err.hint,
    transient: err.transient,
    source,
    publishTries: err.publishTries,
    verb: err.verb,
  });
}

/**
 * A queue name, or a TypeError saying what to change: an empty name is no
 * queue on any transport (RabbitMQ reads it as the last queue declared on
 * the channel, so a purge could empty another queue). The one check of the
 * brokers (Redis, RabbitMQ, KV) and the app.
 *
 * @example
 * ```ts
 * import { checkQueueName } from "./errors.ts";
 * checkQueueName("celery", "purge()"); // "celery"
 * ```
 *
 * @param queue the argument
 * @param method the method, for the message
 * @param defaultQueue the queue used when the argument is left out (the
 *   app's methods), named in the message
 * @returns the queue name
 * @throws {TypeError} when it is not a non-empty string
 */
export function checkQueueName(queue: unknown, method: string, defaultQueue?: string): string {
  if (typeof queue !== "string" || queue === "") {
    const orDefault = defaultQueue === undefined
      ? ""
      : `, or leave it out for the default queue ("${defaultQueue}", the defaultQueue option)`;
    throw new TypeError(
      `${method} needs a queue name, got ${JSON.stringify(queue) ?? String(queue)}: ` +
        `name a queue${orDefault}`,
    );
  }
  return queue;
}

/**
 * The error of a take (or another call) on a broker that was closed, also
 * one the close cut short: trying again cannot help
 * (`transient` false), so a worker whose app closed its broker under it
 * stops, saying so, instead of taking again and again.
 *
 * @example
 * ```ts
 * import { brokerClosed } from "./errors.ts";
 * const err = brokerClosed("kv://:memory:", "openKvBroker()");
 * console.assert(err.transient === false && /was closed/.test(err.message));
 * ```
 *
 * @param url the broker's URL (its password is masked in the message)
 * @param reopen how to open a new one, e.g. `openKvBroker()`
 * @param cause what the call met when the broker closed under it (default none)
 * @returns the error to reject with
 */
export function brokerClosed(url: string, reopen: string, cause?: unknown): BrokerConnectionError {
  return new BrokerConnectionError(url, cause, {
    reason: "this broker was closed",
    hint: `Open a new one with ${reopen}, and close an app only after its worker stopped`,
    transient: false,
  });
}

/**
 * What became of one message of a batch that failed or was stopped:
 * `sent` the broker took it (Redis replied to its LPUSH, RabbitMQ confirmed
 * it, KV committed it), `unsent` it was never written, `unknown` it was
 * written but no answer came (it may have gone out).
 */
export type PublishOutcome = "sent" | "unsent" | "unknown";

/**
 * A batch publish (`publishMany`) stopped part way: some messages were
 * taken, some may have been. `outcomes[i]` is what became of message `i`
 * of the batch; `cause` is what stopped it (the connection error, or the
 * abort signal's reason). Thrown only when at least one message was sent
 * or may have been: a batch of which nothing went out rejects with the
 * cause itself.
 *
 * @example
 * ```ts
 * import { BatchPublishError } from "@celeriac/celeriac";
 * const err = new BatchPublishError(["sent", "unsent"], new Error("connection reset"));
 * console.assert(err.code === "BATCH_PUBLISH_PARTIAL");
 * ```
 */
export class BatchPublishError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BATCH_PUBLISH_PARTIAL";
  /** What became of each message of the batch, in the batch's order. */
  readonly outcomes: readonly PublishOutcome[];

  /**
   * Describe a batch stopped part way.
   *
   * @param outcomes what became of each message
   * @param cause what stopped the batch
   */
  constructor(outcomes: readonly PublishOutcome[], cause: unknown) {
    const count = (o: PublishOutcome) => outcomes.filter((x) => x === o).length;
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `A batch of ${outcomes.length} messages stopped part way (${why}): ${count("sent")} sent, ` +
        `${count("unsent")} not sent, ${count("unknown")} unknown (may have gone out). ` +
        `Publish the unsent ones again; check the unknown ones before publishing them again`,
      { cause },
    );
    this.name = "BatchPublishError";
    this.outcomes = outcomes;
  }
}

/**
 * A message was sent to a RabbitMQ exchange that does not exist: RabbitMQ
 * refuses it (a `NOT_FOUND` channel error, which kombu raises to the
 * caller with publisher confirms), so it was not sent.
 *
 * @example
 * ```ts
 * import { ExchangeNotFoundError } from "@celeriac/celeriac";
 * const err = new ExchangeNotFoundError("billing", "invoices");
 * console.assert(err.code === "EXCHANGE_NOT_FOUND" && err.exchange === "billing");
 * ```
 */
export class ExchangeNotFoundError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "EXCHANGE_NOT_FOUND";
  /** The exchange named by the message's target. */
  readonly exchange: string;

  /**
   * Describe a message refused for its exchange.
   *
   * @param exchange the exchange that does not exist
   * @param routingKey the message's routing key
   */
  constructor(exchange: string, routingKey: string) {
    super(
      `Exchange "${exchange}" does not exist on the broker (RabbitMQ NOT_FOUND): the message ` +
        `for routing key "${routingKey}" was not sent. Declare the exchange (and bind a queue ` +
        "to it) before sending, or send to a queue instead (queue / routingKey, no exchange)",
    );
    this.name = "ExchangeNotFoundError";
    this.exchange = exchange;
  }
}

/**
 * A RabbitMQ declaration kept failing because other operations on the same
 * admin channel were refused (RabbitMQ closes a channel on a refusal, and
 * every operation queued on it fails with it). `cause` is the error the
 * operation itself got; the message names the refusal that closed the channel.
 *
 * @example
 * ```ts
 * import { AdminChannelClosedError } from "@celeriac/celeriac";
 * const err = new AdminChannelClosedError(new Error("NOT_FOUND - no exchange 'x'"), new Error("Channel ended"));
 * console.assert(err.code === "ADMIN_CHANNEL_CLOSED");
 * ```
 */
export class AdminChannelClosedError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "ADMIN_CHANNEL_CLOSED";

  /**
   * Describe a declaration that failed by others' refusals.
   *
   * @param closedBy why RabbitMQ closed the channel (another operation's refusal)
   * @param cause what this operation got (amqplib's "Channel ended…")
   */
  constructor(closedBy: Error, cause: unknown) {
    super(
      `A RabbitMQ declaration failed because another operation on the same channel was refused ` +
        `(${closedBy.message}), several times in a row: ${(cause as Error)?.message ?? cause}. ` +
        "Fix what is refused (a missing exchange, a queue declared with other arguments) and try again",
      { cause },
    );
    this.name = "AdminChannelClosedError";
  }
}

/**
 * The error a batch publish rejects with: `cause` itself when nothing was
 * sent or may have been (publishing it all again is safe), else a
 * {@link BatchPublishError} with each message's outcome.
 *
 * @example
 * ```ts
 * const err = new Error("connection refused");
 * throw batchFailure(["unsent", "unsent"], err); // err itself
 * ```
 *
 * @param outcomes what became of each message
 * @param cause what stopped the batch
 * @returns the error to throw
 */
export function batchFailure(outcomes: readonly PublishOutcome[], cause: unknown): unknown {
  return outcomes.every((o) => o === "unsent") ? cause : new BatchPublishError(outcomes, cause);
}

/**
 * The error a one-message publish made through a batch publish rejects
 * with: a {@link BatchPublishError}'s cause (one message's outcome says
 * nothing a caller of `publish()` can use: the cause, a
 * {@link BrokerConnectionError} for a dropped connection, is what it is
 * documented to throw), else the error itself.
 *
 * @example
 * ```ts
 * import { BatchPublishError, BrokerConnectionError, singleFailure } from "./errors.ts";
 * const cause = new BrokerConnectionError("connection lost");
 * singleFailure(new BatchPublishError(["unknown"], cause)) === cause; // true
 * ```
 *
 * @param err what the batch publish rejected with
 * @returns the error to throw
 */
export function singleFailure(err: unknown): unknown {
  return err instanceof BatchPublishError ? err.cause : err;
}

/**
 * A listing or requeue of RabbitMQ's `celeriac.parked` waited its whole
 * `parkedScanWait` for its turn: another process kept reading the queue
 * (only one process reads it at a time, the one that holds the exclusive
 * queue `celeriac.parked.scan-lock`), or this broker's own earlier
 * listing or requeue did (one broker's run one after another).
 *
 * @example
 * ```ts
 * import { ParkedScanBusyError } from "@celeriac/celeriac";
 * const err = new ParkedScanBusyError("celeriac.parked.scan-lock", 30_000);
 * console.assert(err.code === "PARKED_SCAN_BUSY" && err.lockQueue === "celeriac.parked.scan-lock");
 * console.assert(err.heldBy === "another process");
 * ```
 */
export class ParkedScanBusyError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "PARKED_SCAN_BUSY";
  /** The exclusive queue a scan holds while it runs. */
  readonly lockQueue: string;
  /** Whose scan it waited for: another process's, or this broker's own. */
  readonly heldBy: "another process" | "this broker";

  /**
   * Describe a wait for another scan that ran out.
   *
   * @param lockQueue the exclusive queue a scan holds while it runs
   * @param waitedMs how long this one waited
   * @param cause RabbitMQ's refusal of the last try (none for a wait within this broker)
   * @param heldBy whose scan it waited for; default another process's
   */
  constructor(
    lockQueue: string,
    waitedMs: number,
    cause?: unknown,
    heldBy: "another process" | "this broker" = "another process",
  ) {
    const waited = `waited ${waitedMs / 1000} s for it to finish. `;
    super(
      heldBy === "this broker"
        ? "This broker's own earlier listing or requeue of parked messages is still running (one " +
          `broker runs them one after another); ${waited}` +
          "Try again once it is done, or make fewer at once (AmqpBrokerOptions.parkedScanWait sets " +
          "how long to wait)"
        : `Another process is listing or requeueing parked messages on this vhost (its connection ` +
          `holds the exclusive queue "${lockQueue}"); ${waited}` +
          "Try again once its requeue is done: RabbitMQ removes that queue when the requeue ends " +
          "or its connection closes (AmqpBrokerOptions.parkedScanWait sets how long to wait)",
      { cause },
    );
    this.name = "ParkedScanBusyError";
    this.lockQueue = lockQueue;
    this.heldBy = heldBy;
  }
}

/**
 * RabbitMQ's `celeriac.revoked` exists as something other than the stream
 * Celeriac keeps revokes in (a classic or quorum queue of that name): it
 * cannot be used as it is, and must be deleted so the next worker declares
 * it anew. (A stream an earlier version declared with a longer `x-max-age`
 * is used as it is.)
 *
 * @example
 * ```ts
 * import { RevokedStreamMismatchError } from "@celeriac/celeriac";
 * const err = new RevokedStreamMismatchError("celeriac.revoked", "x-queue-type");
 * console.assert(err.code === "REVOKED_STREAM_MISMATCH" && err.queue === "celeriac.revoked");
 * ```
 */
export class RevokedStreamMismatchError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "REVOKED_STREAM_MISMATCH";
  /** The queue to delete. */
  readonly queue: string;

  /**
   * Describe a revoked stream that exists with other settings.
   *
   * @param queue the queue's name
   * @param arg the argument RabbitMQ says differs (`undefined` when its answer names none)
   * @param cause RabbitMQ's refusal (`PRECONDITION_FAILED`)
   */
  constructor(queue: string, arg: string | undefined, cause?: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause ?? "PRECONDITION_FAILED");
    super(
      `Queue "${queue}" exists with other settings than Celeriac's revoked stream ` +
        `(${arg === undefined ? why : `its ${arg} differs: ${why}`}). Delete it when no worker ` +
        `runs (rabbitmqctl delete_queue ${queue} --vhost <vhost>, or the management UI): the ` +
        "next worker declares it anew as a stream (the revokes stored in it are then forgotten)",
      { cause },
    );
    this.name = "RevokedStreamMismatchError";
    this.queue = queue;
  }
}
