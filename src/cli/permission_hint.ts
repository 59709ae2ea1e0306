/**
 * The worker's start-up line about what Deno's permissions kept it from
 * reading, which it otherwise replaces without a word: `CELERY_*`
 * variables (`--allow-env`), the host name of the node name (`celeriac@%h`
 * becomes `celeriac@localhost`, `--allow-sys=hostname`), the load average
 * of its heartbeats (`[0, 0, 0]`, `--allow-sys=loadavg`). One line, and
 * only for what the worker used: a WARNING when the broker or result
 * backend may have come from an unread variable (the worker may be on
 * another broker than the one set), else INFO — narrow flags chosen on
 * purpose cost one quiet line.
 *
 * @module
 */

import { granted } from "./permissions.ts";

/**
 * What the worker used that a permission may have kept from it.
 *
 * @example
 * ```ts
 * import type { PermissionNeeds } from "./permission_hint.ts";
 * const needs: PermissionNeeds = { unreadEnv: [], usesHostName: true, heartbeats: true };
 * ```
 */
export interface PermissionNeeds {
  /** The variables the app's settings asked for and could not read (`takeUnreadEnv()`). */
  unreadEnv: readonly string[];
  /** The node name is built from the host name (`%h`). */
  usesHostName: boolean;
  /** Heartbeats are sent (they carry the load average). */
  heartbeats: boolean;
}

/**
 * The start-up line for what the permissions kept from the worker, or
 * `null` when nothing was.
 *
 * @example
 * ```ts
 * const hint = permissionHint({ unreadEnv: ["CELERY_BROKER_URL"], usesHostName: true, heartbeats: true });
 * // { level: "warning", message: "CELERY_BROKER_URL not read (run with --allow-env); …" }
 * ```
 *
 * @param needs what the worker used
 * @returns the level and text of the line
 */
export function permissionHint(
  needs: PermissionNeeds,
): { level: "warning" | "info"; message: string } | null {
  const parts: string[] = [];
  if (needs.unreadEnv.length > 0) {
    parts.push(`${needs.unreadEnv.join(", ")} not read, defaults used (run with --allow-env)`);
  }
  if (needs.usesHostName && !granted({ name: "sys", kind: "hostname" })) {
    parts.push("the node name has localhost for the host name (run with --allow-sys=hostname)");
  }
  if (needs.heartbeats && !granted({ name: "sys", kind: "loadavg" })) {
    parts.push("heartbeats report load [0, 0, 0] (run with --allow-sys=loadavg)");
  }
  if (parts.length === 0) return null;
  const connection = needs.unreadEnv.some((name) =>
    name === "CELERY_BROKER_URL" || name === "CELERY_RESULT_BACKEND"
  );
  return {
    level: connection ? "warning" : "info",
    message: `Deno permissions: ${parts.join("; ")}`,
  };
}

/** The variables a command's broker and result backend come from when nothing else sets them. */
const CONNECTION_ENV = ["CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"];

/**
 * For a command other than `worker` (which says it in {@link permissionHint}'s
 * line): the warning that its broker or result backend may not be the one set,
 * because Deno's permissions kept `CELERY_BROKER_URL` / `CELERY_RESULT_BACKEND`
 * from it, naming what it uses instead and the flag; `null` when it read them
 * (or the app or a flag set them). Without it, `call` with no `--allow-env`
 * sent to the default KV file and only said it needed `--allow-write` for it.
 *
 * @example
 * ```ts
 * import { unreadConnectionHint } from "./permission_hint.ts";
 * unreadConnectionHint(["CELERY_BROKER_URL"], "kv://.celeriac/celeriac.sqlite", null);
 * // "Deno permissions: CELERY_BROKER_URL not read (run with --allow-env, or give -b): the broker is kv://…"
 * ```
 *
 * @param unreadEnv the variables the app's settings could not read (`takeUnreadEnv()`)
 * @param broker the broker URL in use, password masked
 * @param backend the result backend URL in use, password masked, or `null` for none
 * @returns the warning's text, or `null`
 */
export function unreadConnectionHint(
  unreadEnv: readonly string[],
  broker: string,
  backend: string | null,
): string | null {
  const names = unreadEnv.filter((name) => CONNECTION_ENV.includes(name));
  if (names.length === 0) return null;
  const flags = names.map((name) => name === "CELERY_BROKER_URL" ? "-b" : "--backend");
  const used = names.map((name) =>
    name === "CELERY_BROKER_URL"
      ? `the broker is ${broker}`
      : `the result backend is ${backend ?? "none"}`
  );
  return `Deno permissions: ${names.join(", ")} not read (run with --allow-env, or give ${
    flags.join(" and ")
  }): ${used.join(", ")}`;
}
