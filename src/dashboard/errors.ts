/**
 * Errors of the dashboard: {@link HttpError} carries the HTTP status and a
 * stable code, and is answered as `{"error": {"code", "message"}}`;
 * {@link DashboardOptionsError} refuses options it cannot serve with.
 *
 * @module
 */

import { isBrokerDown } from "./broker_health.ts";

/**
 * An API request that cannot be served as asked.
 *
 * @example
 * ```ts
 * import { HttpError } from "@celeriac/celeriac/dashboard";
 * const err = new HttpError(404, "unknown_task", "No task abc is known to the dashboard");
 * err.status; // 404
 * ```
 */
export class HttpError extends Error {
  /** Always `HttpError`. */
  override name = "HttpError";
  /** HTTP status, 4xx or 5xx. */
  readonly status: number;
  /** Stable machine-readable code, e.g. `unknown_task`, `bad_json`, `csrf`. */
  readonly code: string;
  /** Seconds after which to ask again, sent as `Retry-After`; none by default. */
  readonly retryAfter?: number;
  /** The methods the path takes, sent as `Allow` (with a 405); none by default. */
  allow?: string;

  /**
   * An error answered with `status`.
   *
   * @param status HTTP status
   * @param code stable code
   * @param message what happened and what to change
   * @param retryAfter seconds after which to ask again (a `Retry-After` header); none by default
   */
  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Seconds a client is told to wait before asking for parked messages again while another process reads them. */
const PARKED_BUSY_RETRY_S = 5;

/**
 * Whether `err` is the broker's `ParkedScanBusyError` (code
 * `PARKED_SCAN_BUSY`): another process was listing or requeueing parked
 * messages for longer than the broker would wait.
 *
 * @example
 * ```ts
 * import { isParkedScanBusy } from "./errors.ts";
 * isParkedScanBusy(Object.assign(new Error("busy"), { code: "PARKED_SCAN_BUSY" })); // true
 * ```
 *
 * @param err anything thrown
 * @returns true for a busy parked scan
 */
export function isParkedScanBusy(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "PARKED_SCAN_BUSY";
}

/** Seconds a client is told to wait before asking again while the broker cannot be reached. */
const BROKER_DOWN_RETRY_S = 5;

/**
 * `err` as the HttpError it is answered with: a busy parked scan and a broker that cannot be
 * reached are 503 (with `Retry-After`), anything else unknown 500.
 */
function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isParkedScanBusy(err)) {
    return new HttpError(503, "PARKED_SCAN_BUSY", (err as Error).message, PARKED_BUSY_RETRY_S);
  }
  if (isBrokerDown(err)) {
    return new HttpError(
      503,
      "broker_unreachable",
      `Broker unreachable: ${(err as Error).message}`,
      BROKER_DOWN_RETRY_S,
    );
  }
  return new HttpError(
    500,
    "internal",
    `Internal error: ${(err as Error)?.message ?? String(err)}`,
  );
}

/**
 * The JSON error response of an error.
 *
 * @example
 * ```ts
 * import { errorResponse, HttpError } from "@celeriac/celeriac/dashboard";
 * errorResponse(new HttpError(400, "bad_json", "Body is not JSON")).status; // 400
 * ```
 *
 * @param err an HttpError; a broker's `ParkedScanBusyError` (answered 503
 *   `PARKED_SCAN_BUSY` with `Retry-After: 5`); a broker that cannot be reached
 *   (`BrokerConnectionError`, a Redis connection's error: 503 `broker_unreachable`,
 *   `Retry-After: 5`); or anything else (answered 500)
 * @param headers extra headers
 * @returns the response
 */
export function errorResponse(err: unknown, headers: HeadersInit = {}): Response {
  const e = asHttpError(err);
  const all = new Headers(headers);
  if (e.retryAfter !== undefined) all.set("retry-after", String(e.retryAfter));
  if (e.allow !== undefined) all.set("allow", e.allow);
  return Response.json({ error: { code: e.code, message: e.message } }, {
    status: e.status,
    headers: all,
  });
}

/**
 * The options a {@link DashboardOptionsError} can be about: `hostname`, `auth.basic`,
 * `auth.token`, `allowedHosts`.
 */
export type DashboardOption = "hostname" | "basic" | "token" | "allowedHosts";

/**
 * How a {@link DashboardOptionsError}'s message names each option it is
 * about (`name`) and shows how to give it (`example`): by default as
 * `DashboardOptions` spells them, a command line as its flags.
 *
 * @example
 * ```ts
 * import type { DashboardOptionNames } from "@celeriac/celeriac/dashboard";
 * const flags: DashboardOptionNames = {
 *   hostname: { name: "--address", example: "--address 0.0.0.0" },
 *   basic: { name: "--basic-auth", example: "--basic-auth user:pass" },
 *   token: { name: "--token", example: "--token TOKEN" },
 *   allowedHosts: { name: "--allowed-host", example: "--allowed-host dash.example.com" },
 * };
 * ```
 */
export type DashboardOptionNames = Record<DashboardOption, { name: string; example: string }>;

/** The options' names in `DashboardOptions`. */
const OPTION_NAMES: DashboardOptionNames = {
  hostname: { name: "hostname", example: 'hostname: "0.0.0.0"' },
  basic: { name: "auth.basic", example: 'auth: { basic: ["user:pass"] }' },
  token: { name: "auth.token", example: 'auth: { token: "…" }' },
  allowedHosts: { name: "allowedHosts", example: 'allowedHosts: ["dash.example.com"]' },
};

/**
 * Dashboard options it cannot serve with: a Basic pair without a user or a
 * password, a token under 16 characters, an address off the loopback
 * interface without authentication, an allowed host that is no host name. A `TypeError`.
 *
 * @example Showing the message with a command line's flag names
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Dashboard, DashboardOptionsError } from "@celeriac/celeriac/dashboard";
 * try {
 *   new Dashboard({ app: new Celery({ broker: "kv://:memory:" }), hostname: "0.0.0.0" });
 * } catch (err) {
 *   if (!(err instanceof DashboardOptionsError)) throw err;
 *   err.option; // "hostname"
 *   err.messageWith({
 *     hostname: { name: "--address", example: "--address 0.0.0.0" },
 *     basic: { name: "--basic-auth", example: "--basic-auth user:pass" },
 *     token: { name: "--token", example: "--token TOKEN" },
 *     allowedHosts: { name: "--allowed-host", example: "--allowed-host dash.example.com" },
 *   }); // "--address 0.0.0.0 is off the loopback interface: ..., pass --basic-auth user:pass or --token TOKEN"
 * }
 * ```
 */
export class DashboardOptionsError extends TypeError {
  /** Always `DashboardOptionsError`. */
  override name = "DashboardOptionsError";
  /** Always `DASHBOARD_OPTIONS`. */
  readonly code = "DASHBOARD_OPTIONS";
  /** The option refused. */
  readonly option: DashboardOption;
  readonly #say: (names: DashboardOptionNames) => string;

  /**
   * An error about `option`; its message is `say` with the options' own names.
   *
   * @param option the option refused
   * @param say the message, given how to name the options
   */
  constructor(option: DashboardOption, say: (names: DashboardOptionNames) => string) {
    super(say(OPTION_NAMES));
    this.option = option;
    this.#say = say;
  }

  /**
   * The message with the options named otherwise (a command line's flags).
   *
   * @param names how to name each option
   * @returns the message
   */
  messageWith(names: DashboardOptionNames): string {
    return this.#say(names);
  }
}
