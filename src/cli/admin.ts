// deno-lint-ignore-file no-console
/**
 * Operator sub-commands of the command line: parked messages and purge.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { ParkedMessage } from "../broker/port.ts";
import { EXIT_CODES } from "./exit_codes.ts";

/**
 * The task column of `parked`: `name[id]`, with a readable stand-in for
 * what the message did not carry (a body that could not be decoded, or a
 * message that is not a Celery task, has neither name nor id).
 *
 * @example
 * ```ts
 * import { parkedTask } from "./admin.ts";
 * parkedTask({ taskName: "t.add", taskId: "42" }); // "t.add[42]"
 * parkedTask({ taskName: null, taskId: null }); // "(no task name or id)"
 * ```
 *
 * @param p the parked message's task name and id
 * @returns the text of the task column
 */
export function parkedTask(p: Pick<ParkedMessage, "taskName" | "taskId">): string {
  if (p.taskName === null && p.taskId === null) return "(no task name or id)";
  return `${p.taskName ?? "(no task name)"}[${p.taskId ?? "no id"}]`;
}

/**
 * List (or requeue) parked messages; resolves with the exit code.
 *
 * @example
 * ```ts
 * import { parked } from "./admin.ts";
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * Deno.exitCode = await parked(app, { requeue: false, limit: 20 });
 * ```
 *
 * @param app the app whose broker holds the parked messages
 * @param options `requeue` moves them back to their queues; `limit` caps how many
 * @returns the exit code
 */
export async function parked(
  app: Celery,
  options: { requeue: boolean; limit?: number },
): Promise<number> {
  const broker = await app.broker();
  if (options.requeue) {
    console.log(
      `Requeued ${await broker.requeueParked({ limit: options.limit })} parked message(s)`,
    );
    return 0;
  }
  const list = await broker.listParked({ limit: options.limit });
  for (const p of list) {
    console.log(`${p.parkedAt.toISOString()}  ${p.queue}  ${parkedTask(p)}  ${p.reason}`);
  }
  console.log(`${list.length} parked message(s)`);
  return 0;
}

/** Ask a question and read one line of standard input (a terminal or a pipe). */
async function ask(question: string): Promise<string> {
  await Deno.stdout.write(new TextEncoder().encode(question));
  const decoder = new TextDecoder();
  let line = "";
  const reader = Deno.stdin.readable.getReader();
  try {
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      line += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return line.split("\n")[0];
}

/**
 * Delete every waiting message of the queues, after asking on the terminal
 * unless `force` (Celery's `celery purge [-f]`); resolves with the exit code.
 *
 * @example
 * ```ts
 * import { purge } from "./admin.ts";
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * Deno.exitCode = await purge(app, { queues: ["celery"], force: true });
 * ```
 *
 * @param app the app whose broker holds the queues
 * @param options the queues (none: nothing to do), and `force` to skip the question
 * @returns the exit code: 0, or 1 when the operator said no
 */
export async function purge(
  app: Celery,
  options: { queues: readonly string[]; force: boolean },
): Promise<number> {
  const names = options.queues.join(", ");
  if (options.queues.length === 0) {
    // Celery's words when -X excludes every queue: nothing asked, nothing deleted.
    console.log("No messages purged from 0 queues.");
    return 0;
  }
  if (!options.force) {
    console.log(
      `WARNING: This will remove all tasks from queue${options.queues.length > 1 ? "s" : ""}: ` +
        `${names}.\n         There is no undo for this operation! (use -f to skip this question)`,
    );
    // Celery 5.2 asks with click.confirm: y or yes (any case), anything else is no.
    const answer = await ask("Are you sure you want to delete all tasks? [y/N]: ");
    if (!["y", "yes"].includes(answer.trim().toLowerCase())) {
      console.log("Purge cancelled: nothing deleted");
      return EXIT_CODES.failed;
    }
  }
  let total = 0;
  for (const q of options.queues) total += await app.purge(q);
  console.log(
    `Purged ${total} message${total === 1 ? "" : "s"} from ${options.queues.length} ` +
      `queue${options.queues.length === 1 ? "" : "s"} (${names}).`,
  );
  return 0;
}
