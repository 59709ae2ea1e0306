// deno-lint-ignore-file no-console
/**
 * `events`: a live terminal view of workers and tasks (`q` or Ctrl-C
 * quits), or with `--dump` one line per event, as `celery events` does;
 * when stdout is not a terminal (a pipe, a file), the `--dump` lines.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import { EventState } from "../client/event_state.ts";
import type { CeleryEvent } from "../protocol/events.ts";
import { EventDumper } from "./evdump.ts";
import { table } from "./table.ts";
import { defaultBroker, privateBroker } from "./inspect.ts";
import { oneLine } from "../worker/log_values.ts";

const log = getLogger(["celeriac", "cli"]);

/**
 * The rows with every cell that came from an event as one line of text
 * whose control characters are escaped (`\x1b`, `\n`), as the worker's log
 * shows message values: a task name or hostname cannot clear the screen,
 * colour it, set the title or draw rows of its own (ncurses, under Celery's
 * `celery events`, shows them as `^[`).
 */
function shown(rows: readonly (readonly unknown[])[]): string[][] {
  return rows.map((r) => r.map((c) => oneLine(c === null || c === undefined ? "-" : String(c))));
}

/**
 * Log that an event could not be shown: its type, the hostname it names and
 * the error, each escaped as the worker's log escapes message values
 * (`\n`, `\x1b`, `\u202e`), so a hostname sent by anyone on the broker
 * cannot write a forged log line or reorder the line's text.
 *
 * @example
 * ```ts ignore
 * warnSkipped({ type: "worker-heartbeat", hostname: "w@h\nforged" } as never, new Error("bad"));
 * // Skipped an event that could not be shown (worker-heartbeat from w@h\nforged): bad
 * ```
 *
 * @param e the event, as received
 * @param err what showing it threw
 */
export function warnSkipped(e: CeleryEvent, err: unknown): void {
  log.warn("Skipped an event that could not be shown ({type} from {hostname}): {error}", {
    type: oneLine(String(e.type)),
    hostname: oneLine(String(e.hostname)),
    error: oneLine(String((err as Error)?.message ?? err ?? "unknown")),
  });
}

/**
 * The live view's text.
 *
 * @example
 * ```ts ignore
 * render(new EventState(), 24);
 * ```
 *
 * @param state the events received so far
 * @param rows the terminal's height
 * @returns the screen, event-sourced text escaped
 */
export function render(state: EventState, rows: number): string {
  const workers = [...state.workers.values()];
  const alive = workers.filter((w) => state.isAlive(w)).length;
  const counts = Object.entries(state.countByState()).map(([s, n]) => `${s} ${n}`).join("  ");
  const wt = table(shown([
    ["WORKER", "STATUS", "ACTIVE", "PROCESSED", "LOAD", "SOFTWARE"],
    ...workers.map((w) => [
      w.hostname,
      state.isAlive(w) ? "online" : "OFFLINE",
      w.active,
      w.processed,
      w.loadavg.join(" "),
      w.software ? `${w.software.ident} ${w.software.version}` : "-",
    ]),
  ]));
  const room = Math.max(3, rows - workers.length - 8);
  const tt = table(
    shown([
      ["TIME", "STATE", "TASK", "ID", "RUNTIME", "WORKER"],
      ...state.latest(room).map((t) => [
        new Date(t.updated * 1000).toISOString().slice(11, 23),
        t.state,
        t.name,
        t.uuid,
        t.runtime === null ? "" : `${t.runtime.toFixed(3)}s`,
        t.hostname,
      ]),
    ]),
    40,
  );
  return [
    `Celeriac events — ${alive}/${workers.length} worker(s) online, ${state.eventCount} event(s)` +
    `   (q: quit)`,
    "",
    wt,
    "",
    oneLine(`Tasks: ${counts || "none yet"}`),
    tt,
  ].join("\n");
}

/**
 * `events [--dump]`.
 *
 * @param app the app
 * @param values parsed flags
 * @returns exit code
 */
export async function runEvents(
  app: Celery,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const alone = privateBroker(app.config.broker);
  if (alone) console.error(`events: no event from another process can come: ${alone}`);
  const unnamed = defaultBroker(app.config.broker, values, "events: listening on");
  if (unnamed) console.error(unnamed);
  const live = values.dump !== true && Deno.stdout.isTerminal();
  if (values.dump !== true && !live) {
    console.error(
      "events: stdout is not a terminal: writing one line per event, as --dump does " +
        "(run it in a terminal for the live view)",
    );
  }
  const dump = !live;
  const tty = live && Deno.stdin.isTerminal();
  if (tty) {
    Deno.stdin.setRaw(true);
    (async () => {
      const buf = new Uint8Array(16);
      while (!ac.signal.aborted) {
        const n = await Deno.stdin.read(buf);
        if (n === null || buf.subarray(0, n).some((b) => b === 0x71 || b === 0x03)) ac.abort();
      }
    })();
  }
  const state = new EventState();
  let timer: ReturnType<typeof setInterval> | undefined;
  if (!dump) {
    const draw = () => {
      console.log(`\x1b[2J\x1b[H${render(state, Deno.consoleSize().rows)}`);
    };
    draw();
    timer = setInterval(draw, 1000);
  } else console.log("-> evdump: starting capture...");
  const dumper = new EventDumper();
  try {
    for await (const e of app.events.receive({ signal: ac.signal })) {
      try {
        if (dump) console.log(dumper.line(e));
        else state.event(e);
      } catch (err) {
        warnSkipped(e, err);
      }
    }
  } finally {
    clearInterval(timer);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (tty) Deno.stdin.setRaw(false);
  }
  return 0;
}
