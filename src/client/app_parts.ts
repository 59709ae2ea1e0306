/**
 * The parts a {@link Celery} app delegates to, wired to it: its
 * connections, its producer ({@link Dispatch}), the signatures it makes by
 * task name, and the brand that {@link Celery.isApp} recognizes across
 * copies of the module. Module-private to the app: nothing here is public.
 *
 * @module
 */

import type { Celery } from "./app.ts";
import type { CeleryBase } from "./app_base.ts";
import { Signature } from "./canvas/signature.ts";
import type { SignatureOptions } from "./canvas/signature_options.ts";
import { Connections } from "./connections.ts";
import { Dispatch } from "./dispatch.ts";
import { PUBLISHER, SENT_FROM_TASK } from "./publisher.ts";
import type { TaskRegistry } from "./registry.ts";
import type { AppSettings } from "./settings.ts";

const BRAND = Symbol.for("celeriac.app");

/**
 * Mark a value as a Celeriac app (see {@link isBranded}).
 *
 * @example
 * ```ts
 * import { brand, isBranded } from "./app_parts.ts";
 * const app = {};
 * brand(app);
 * isBranded(app); // true
 * ```
 *
 * @param app the app being constructed
 */
export function brand(app: object): void {
  Object.defineProperty(app, BRAND, { value: true });
}

/**
 * Whether a value was marked by {@link brand} (also by another copy of
 * this module: the brand is a registered symbol).
 *
 * @example
 * ```ts
 * import { isBranded } from "./app_parts.ts";
 * isBranded({}); // false
 * ```
 *
 * @param value anything
 * @returns true for an app
 */
export function isBranded(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * An app's connections: opened on first use, with the app's configuration
 * and URL sources as they are then.
 *
 * @example
 * ```ts ignore
 * readonly #connections = appConnections(this.oid, () => this.#settings);
 * ```
 *
 * @param oid the app's reply-queue id
 * @param settings the app's settings (read at each open)
 * @returns the connections
 */
export function appConnections(oid: string, settings: () => AppSettings): Connections {
  return new Connections(() => settings().config, oid, () => settings().sources);
}

/**
 * An app's producer, reading the app's configuration, routes, publishing
 * hooks, tasks and connections at each send.
 *
 * @example
 * ```ts ignore
 * readonly #dispatch = appDispatch(this, () => this.#settings, this.#registry, this.#connections);
 * ```
 *
 * @param app the app
 * @param settings the app's settings (changed by `configure()`)
 * @param registry the app's tasks
 * @param connections the app's connections
 * @returns the producer
 */
export function appDispatch(
  app: CeleryBase,
  settings: () => AppSettings,
  registry: TaskRegistry,
  connections: Connections,
): Dispatch {
  return new Dispatch({
    oid: app.oid,
    config: () => settings().config,
    routes: () => settings().routes,
    publisher: () => app[PUBLISHER],
    sentFromTask: () => app[SENT_FROM_TASK],
    task: (name) => registry.tasks.get(name),
    events: () => app.events,
    broker: (options) => app.broker(options),
    resultBackend: () => app.resultBackend(),
    openedBackend: () => connections.openedBackend,
  });
}

/**
 * A signature for a task by name (`Celery.signature`): copies of the
 * arguments, then the options set as `Signature.set` sets them.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const mul = namedSignature<number>(app, "py.mul", [2], {}, { queue: "py" });
 * ```
 *
 * @param app the app
 * @param name the task name
 * @param args partial positional arguments
 * @param kwargs partial keyword arguments
 * @param options execution options
 * @returns the signature
 */
export function namedSignature<R>(
  app: Celery,
  name: string,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
  options: SignatureOptions,
): Signature<R> {
  return new Signature<R>(app, {
    task: name,
    args: [...args],
    kwargs: { ...kwargs },
    options: {},
    subtask_type: null,
    immutable: false,
  }).set(options);
}
