/**
 * Checking an entry's arguments once, when it is given (beat's start,
 * `PeriodicTasks.add`, `schedule add`), rather than failing at every run:
 * that they encode with the serializer the send would use, and that the app's own
 * handler of its task can take them.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { checkSend } from "../client/arity.ts";
import { TaskArgumentsError } from "../client/errors.ts";
import { loadCodecs } from "../protocol/codecs.ts";
import { rerootEncodeError } from "../protocol/encodable.ts";
import { EncodeError } from "../protocol/errors.ts";
import { serialize } from "../protocol/serializers.ts";
import type { ScheduledEntry } from "./entry.ts";
import { BeatEntryError } from "./errors.ts";

/**
 * Refuse an entry whose `args`/`kwargs` could never be sent: a value the
 * serializer its send would use (`options.serializer`, else its task's, else
 * its route's in `taskRoutes`, else the app's `taskSerializer`) cannot
 * encode (a function, a Symbol, a cycle, a Map, `undefined` in JSON, ...),
 * or, for a task this app registers, arguments its handler cannot take
 * (the check `applyAsync()` makes, `TaskArgumentsError`).
 *
 * @example
 * ```ts ignore
 * const entry = compileEntry("tick", { task: "t.tick", schedule: "1s", args: [() => 1] }, "UTC");
 * await checkEntryArgs(app, entry);
 * // BeatEntryError: beat entry "tick", args[0]: a function cannot be sent ...
 * ```
 *
 * @param app the app that sends the entry
 * @param entry the compiled entry
 * @throws {BeatEntryError} naming the entry and `args`/`kwargs` (the path in them when known)
 */
export async function checkEntryArgs(app: Celery, entry: ScheduledEntry): Promise<void> {
  // The serializer the send would use: the entry's, else its task's, else its route's, else
  // the app's taskSerializer (as publishEntry's applyAsync()/sendTask() resolve it).
  const sent = app.sendOptions(entry.task, entry.args, { ...entry.options, kwargs: entry.kwargs });
  const serializer = sent.serializer ?? app.config.taskSerializer;
  if (serializer === "msgpack") await loadCodecs({ msgpack: true });
  try {
    serialize([entry.args, entry.kwargs, {}], serializer);
  } catch (err) {
    const rooted = rerootEncodeError(err, "body");
    if (!(rooted instanceof EncodeError)) throw err;
    throw new BeatEntryError(
      entry.name,
      rooted.path || "args/kwargs",
      `${rooted.reason} (with the ${serializer} serializer: it could never be sent)`,
    );
  }
  const task = app.tasks.get(entry.task);
  if (!task) return;
  try {
    checkSend(task, entry.args, { ...entry.kwargs });
  } catch (err) {
    if (!(err instanceof TaskArgumentsError)) throw err;
    throw new BeatEntryError(
      entry.name,
      "args/kwargs",
      `${entry.task}'s handler here cannot take them: ${err.reason}`,
    );
  }
}
