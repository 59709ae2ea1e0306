/**
 * The few facts the client reads from its runtime (environment variables,
 * host name, process id), behind feature checks so that the client also
 * loads where they are unavailable or not permitted.
 *
 * @module
 */

interface DenoLike {
  env?: { get(name: string): string | undefined };
  hostname?: () => string;
  pid?: number;
  permissions?: { querySync?(descriptor: unknown): { state: string } };
}

function deno(): DenoLike | undefined {
  return (globalThis as { Deno?: DenoLike }).Deno;
}

/**
 * Whether Deno grants this without asking: a permission left to prompt counts as
 * not granted, so a program run in a terminal with narrow flags is never stopped
 * by a prompt for what it can do without (the host name, a `CELERY_*` variable).
 * Outside Deno (no permission system) everything counts as granted.
 *
 * @example
 * ```ts
 * import { grantedNow } from "./runtime.ts";
 * grantedNow({ name: "sys", kind: "hostname" }); // false without --allow-sys=hostname
 * ```
 *
 * @param descriptor the permission, as `Deno.permissions.querySync` takes it
 * @returns true when granted
 * @throws {TypeError} for a descriptor Deno's query does not take (a wildcard host)
 */
export function grantedNow(descriptor: Deno.PermissionDescriptor): boolean {
  const query = deno()?.permissions?.querySync;
  if (!query) return true; // not Deno, or no permission system: just try
  return query.call(deno()!.permissions, descriptor).state === "granted";
}

/**
 * Whether Deno lets this environment variable be read without asking (see
 * {@link grantedNow}): a URL left at its default because it could not be is
 * named as such in connection errors.
 *
 * @example
 * ```ts
 * import { envReadable } from "./runtime.ts";
 * envReadable("CELERY_BROKER_URL"); // false without --allow-env
 * ```
 *
 * @param name the variable
 * @returns true when it can be read
 */
export function envReadable(name: string): boolean {
  try {
    return grantedNow({ name: "env", variable: name });
  } catch {
    return false;
  }
}

/** The variables {@link readEnv} was not permitted to read (see {@link takeUnreadEnv}). */
const unread = new Set<string>();

/**
 * Read an environment variable; `undefined` when unset, empty (as Celery treats
 * `CELERY_BROKER_URL=`) or not permitted (then remembered for {@link takeUnreadEnv});
 * never asked for at a permission prompt.
 *
 * @example
 * ```ts
 * import { readEnv } from "@celeriac/celeriac/protocol";
 * const url = readEnv("CELERY_BROKER_URL") ?? "redis://127.0.0.1:6379/0";
 * ```
 *
 * @param name the variable
 * @returns its value
 */
export function readEnv(name: string): string | undefined {
  try {
    if (!grantedNow({ name: "env", variable: name })) {
      unread.add(name);
      return undefined;
    }
    return deno()?.env?.get(name) || undefined;
  } catch (err) {
    const kind = (err as Error).name;
    if (kind === "NotCapable" || kind === "PermissionDenied") unread.add(name);
    return undefined;
  }
}

/**
 * The variables {@link readEnv} was not permitted to read (Deno without
 * `--allow-env`) since the last call, which forgets them: the worker names
 * them at start-up, where they would otherwise be ignored without a word.
 *
 * @example
 * ```ts
 * import { readEnv } from "@celeriac/celeriac/protocol";
 * readEnv("CELERY_BROKER_URL"); // undefined without --allow-env
 * takeUnreadEnv(); // ["CELERY_BROKER_URL"]
 * takeUnreadEnv(); // []
 * ```
 *
 * @returns the variables, in the order they were first asked for
 */
export function takeUnreadEnv(): string[] {
  const names = [...unread];
  unread.clear();
  return names;
}

/**
 * This machine's host name, or `localhost` when it cannot be read
 * (Deno needs `--allow-sys=hostname`).
 *
 * @example
 * ```ts
 * import { hostName } from "@celeriac/celeriac/protocol";
 * const node = `celery@${hostName()}`;
 * ```
 *
 * @returns the host name
 */
export function hostName(): string {
  try {
    if (!grantedNow({ name: "sys", kind: "hostname" })) return "localhost";
    return deno()?.hostname?.() ?? "localhost";
  } catch {
    return "localhost";
  }
}

/**
 * Celery's anonymous node name for a client: `gen<pid>@<host>`.
 *
 * @example
 * ```ts
 * import { anonymousNodeName } from "@celeriac/celeriac/protocol";
 * anonymousNodeName(); // e.g. "gen4242@myhost"
 * ```
 *
 * @returns the node name written in the `origin` header
 */
export function anonymousNodeName(): string {
  return `gen${deno()?.pid ?? 0}@${hostName()}`;
}

/**
 * This process's id, or 0 where the runtime has none.
 *
 * @example
 * ```ts
 * import { processId } from "@celeriac/celeriac/protocol";
 * processId(); // e.g. 4242
 * ```
 *
 * @returns the pid
 */
export function processId(): number {
  return deno()?.pid ?? 0;
}
