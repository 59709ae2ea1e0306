/**
 * The hooks through which a worker sends the tasks that its tasks send:
 * {@link PUBLISHER}, the symbol under which it installs a
 * {@link Publisher} on the app inside its Web Workers, and
 * {@link SENT_FROM_TASK}, under which the inline pool notes what the tasks
 * it runs on the app's own thread send.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import type { Message } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";

/**
 * Publishes a message on behalf of an app. A worker installs one in the Web
 * Workers that run tasks, so that tasks sent from a task go through the
 * worker's own connection. `child` is what the sending task's `children`
 * list gets for a canvas's messages (Celery's `add_to_parent`): the
 * canvas's entry with its first message (a group whose member is a chain
 * is one group of chain results, which its messages alone do not show),
 * `null` with the others; absent for a plain task, which is its own entry.
 * `queue` is the queue the message is routed for (the `task-sent` event's
 * `queue`, which may differ from the routing key); absent: the routing key.
 *
 * @example Capturing messages instead of sending them
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { PUBLISHER, type Publisher } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const sent: string[] = [];
 * const capture: Publisher = (message, target) => {
 *   sent.push(`${message.headers.task} -> ${target.routingKey}`);
 *   return Promise.resolve();
 * };
 * app[PUBLISHER] = capture;
 * await app.sendTask("tasks.add", [2, 3]);
 * // sent: ["tasks.add -> celery"]
 * ```
 */
export type Publisher = (
  message: Message,
  target: PublishTarget,
  child?: ResultTuple | null,
  queue?: string,
) => Promise<void>;

/**
 * Symbol under which a worker installs a {@link Publisher} on an app.
 *
 * @example Publishing through another connection, as a worker does
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { openBroker, PUBLISHER } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * console.assert(app[PUBLISHER] === undefined); // outside a worker
 * const shared = await openBroker("kv://:memory:");
 * app[PUBLISHER] = (message, target) => shared.publish(message, target);
 * await app.sendTask("tasks.add", [2, 3]); // goes through `shared`
 * await shared.close();
 * ```
 */
export const PUBLISHER: unique symbol = Symbol.for("celeriac.publisher") as never;

/**
 * Notes a message an app published without a {@link Publisher}, with the
 * sender's `children` entry as a `Publisher`'s `child`. The inline pool
 * installs one on the app whose tasks it runs on the worker's own thread,
 * so that what they send is recorded in their `children` as the Web
 * Workers' tasks' is.
 *
 * @example Listing the messages an app publishes
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { SENT_FROM_TASK, type SentFromTask } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const seen: string[] = [];
 * const note: SentFromTask = (message) => void seen.push(String(message.headers.task));
 * app[SENT_FROM_TASK] = note;
 * await app.sendTask("tasks.add", [2, 3]);
 * // seen: ["tasks.add"]
 * await app.close();
 * ```
 */
export type SentFromTask = (message: Message, child?: ResultTuple | null) => void;

/** Symbol under which the inline pool installs a {@link SentFromTask} on an app. */
export const SENT_FROM_TASK: unique symbol = Symbol.for("celeriac.sentFromTask") as never;
