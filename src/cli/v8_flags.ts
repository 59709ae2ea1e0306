/**
 * The worker's V8 flags by default. V8 enlarges each isolate's young
 * generation (up to 16 MiB per semi-space in the main thread and in every Web
 * Worker) while a steady load keeps its collections finding survivors, so a
 * worker run with V8's defaults climbs from ~230 to ~330 MiB RSS over its first
 * minutes under 2,000 tasks/s before it levels off. `--max-semi-space-size=1`
 * holds it near its working set at the same throughput, but V8 flags can only
 * be set before the first isolate starts (`node:v8`'s `setFlagsFromString`
 * reaches neither the running isolate nor the Web Workers started after it).
 *
 * So `worker.ts`, run as a program, starts over once with the flags: it
 * replaces its own process image (`execve`, same process id, same arguments,
 * nothing left behind) with `DENO_V8_FLAGS` extended by
 * {@link DEFAULT_V8_FLAGS}, which Deno reads at start-up for every isolate of
 * the process. The same start sets `MALLOC_ARENA_MAX=2`
 * ({@link MALLOC_DEFAULTS}) unless the environment sets it (or
 * `GLIBC_TUNABLES` sets `glibc.malloc.arena_max`): glibc gives each thread
 * that allocates while another does an arena of its own, up to 8 per CPU (the
 * main thread, each Web Worker, V8's compiler and GC threads, Deno's I/O
 * threads), and each arena keeps its own free memory; with two, the worker's
 * peak RSS in a 20,000-task drain is about 4 MiB lower at the same CPU per
 * task, and `DENO_NO_PROMPT=1` ({@link NO_PROMPT_DEFAULTS}): a sandboxed
 * task denied a permission fails instead of waiting at a terminal's prompt.
 * It does so only where it can without asking for more than the
 * command already granted: on Linux, with `-A` (FFI for libc's `execve`, and
 * Deno reads `/proc/self/cmdline` only when every permission is granted:
 * `--allow-ffi --allow-env --allow-read` alone are not enough). A command
 * with narrower permissions keeps V8's defaults unless it passes the flags
 * itself (the README's production command does). The `CELERIAC_V8_FLAGS` environment variable replaces the default
 * flags; empty, it turns this off (the malloc setting too).
 *
 * `--no-allocation-site-pretenuring` keeps V8 from allocating the objects of
 * a code site straight in the old generation once most of them have survived
 * two young-generation collections: a drain's messages (decoded envelopes and
 * task requests, held from take to acknowledgement) live a little longer than
 * two 1 MiB collections, so the sites that make them were pretenured and each
 * message then filled the old generation, which V8 lets grow to about four
 * times its live size before a full collection. Without it they go through
 * the young generation like other objects, and most die there: the main
 * thread's old generation grows ~8 MiB less in a 20,000-task drain (peak RSS
 * 128.9–130.3 MiB instead of 135.8–138.7, three alternated
 * `bench/memory_map.ts` triples) at the same CPU per task (49–54 µs against
 * 48–62, `bench/profile.ts --drain --no-sample`, same triples).
 *
 * `--no-short-builtin-calls` leaves V8's built-in functions where they are
 * in the `deno` executable (pages shared with every process that maps it)
 * instead of copying them next to each isolate's generated code: the peak RSS
 * of a 20,000-task drain is ~4 MiB lower (median 122.4 MiB instead of 126.1,
 * ten alternated rounds of the short Redis bench) at the same CPU per task
 * (median 75.7 µs against 83.4, four alternated `bench/profile.ts --drain
 * --no-sample` rounds).
 *
 * `--single-threaded-gc` runs V8's collections on the isolate's own thread
 * instead of handing marking and sweeping to helper threads: on two cores the
 * main thread, two Web Workers and Redis already want every core, and the
 * helper threads (~12 µs of CPU per drained task) only queue behind them. A
 * 20,000-task Redis drain ran faster in 11 of 12 alternated pairs (median
 * 1.12×; `deno task bench --broker redis --only celeriac`, defaults against
 * defaults plus this flag through `CELERIAC_V8_FLAGS`) with the round trip's
 * p50 and p99 no worse and the same peak RSS (median 98.6 MiB against 98.7).
 *
 * `--expose-gc` gives the worker V8's `gc()`, with which it collects its
 * main thread's heap when a run of tasks has doubled it since the last
 * collection (`src/worker/heap_cap.ts`) instead of letting V8 grow it to
 * about three or four times, and once started, before its Web Workers start
 * (the start-up's garbage).
 *
 * `--enable-experimental-regexp-engine` and
 * `--enable-experimental-regexp-engine-on-excessive-backtracks` bound the
 * time a remote-control request's pcre `pattern` (written by whoever can
 * publish to the pidbox) takes to match the node name: the first gives the
 * worker V8's linear-time engine (the `l` flag), on which a pattern it cannot
 * run (back-references, lookarounds) is refused with an error reply; the
 * second moves any other regular expression that backtracks too much to that
 * engine. Without them, `(.*)*(.*)*…$x` held the worker's main thread for
 * good; with them it is answered in milliseconds.
 *
 * `worker.ts dashboard` starts over the same way, with
 * {@link DASHBOARD_V8_FLAGS}: the same flags but the young generation's,
 * which it leaves to V8. Its garbage comes in bursts of a message's events
 * (their objects and strings, the envelope's text and base64 body, up to
 * ~200 KB each from a busy worker), that a 1 MiB semi-space collected every
 * few messages: with V8's growing default a dashboard fed 3,000 tasks' events
 * a second spent 0.93× the CPU per event (`bench/dashboard_cpu.ts
 * --compare`, 8 paired rounds, 6.5 against 6.8 µs, lower or equal in each),
 * and watching a 20,000-task drain 30.1 against 33.8 µs per task
 * (`bench/events_pair.ts --base`, 8 rounds, lower in 7) at a like peak RSS.
 *
 * @module
 */

import { compiledRoot } from "../worker/sandbox_start.ts";
import { cannotStartOver, execSelf, ownCommandLine } from "./start_over.ts";

/**
 * V8 flags the worker runs with unless told otherwise: a 1 MiB
 * young-generation semi-space, no allocation-site pretenuring, built-ins
 * called where the executable maps them, collections on the isolate's own
 * thread, `gc()` for the worker's own collections, and regular expressions
 * that cannot backtrack for good (see the module documentation).
 */
export const DEFAULT_V8_FLAGS =
  "--max-semi-space-size=1,--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc,--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks";

/**
 * V8 flags `worker.ts dashboard` runs with unless told otherwise:
 * {@link DEFAULT_V8_FLAGS} without the 1 MiB young generation (see the module
 * documentation).
 */
export const DASHBOARD_V8_FLAGS =
  "--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc";

/**
 * Environment the worker starts over with, where the environment does not set
 * it already (see the module documentation).
 */
export const MALLOC_DEFAULTS: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

/**
 * Set by the same start unless the environment sets it: Deno then refuses a
 * permission instead of asking for it at a terminal. Only a sandboxed task
 * (its Web Worker has less than `-A`) could be asked for one, and a prompt
 * would hold it until answered, a yes granting that Web Worker what its
 * sandbox denies. Deno reads it only when a process starts.
 */
export const NO_PROMPT_DEFAULTS: Readonly<Record<string, string>> = { DENO_NO_PROMPT: "1" };

/** Environment variable that replaces {@link DEFAULT_V8_FLAGS} (comma-separated; empty: off). */
export const V8_FLAGS_ENV = "CELERIAC_V8_FLAGS";

/** Set in the environment of the process image that was started with the flags. */
const APPLIED_ENV = "CELERIAC_V8_FLAGS_APPLIED";

/**
 * What {@link planV8Flags} decided.
 *
 * @example
 * ```ts
 * import type { V8FlagsPlan } from "./v8_flags.ts";
 * const plan: V8FlagsPlan = { restart: false, reason: "already set" };
 * ```
 */
export type V8FlagsPlan =
  | { restart: true; flags: string[]; denoV8Flags: string; env: Record<string, string> }
  | { restart: false; reason: string };

/**
 * What {@link planV8Flags} decides from.
 *
 * @example
 * ```ts
 * import type { V8FlagsInput } from "./v8_flags.ts";
 * const input: V8FlagsInput = { wanted: "--max-semi-space-size=1", cmdline: ["deno", "run", "-A", "worker.ts"] };
 * ```
 */
export interface V8FlagsInput {
  /** The flags wanted, comma-separated (`CELERIAC_V8_FLAGS`, or {@link DEFAULT_V8_FLAGS}). */
  wanted: string;
  /** `DENO_V8_FLAGS` of this process, if any. */
  denoV8Flags?: string;
  /** This process's command line (`/proc/self/cmdline`). */
  cmdline: string[];
  /** Whether this process image was already started with the flags. Default false. */
  applied?: boolean;
  /** This process's environment, for the defaults it may set and `GLIBC_TUNABLES`. Default empty. */
  environment?: Record<string, string>;
}

function flagName(flag: string): string {
  // V8 reads `--noflag`, `--no-flag` and `--no_flag` as the negation of `--flag`.
  return flag.split("=", 1)[0].replace(/^--?/, "").replaceAll("_", "-").replace(/^no-?/, "");
}

function splitFlags(list: string): string[] {
  return list.split(",").map((f) => f.trim()).filter((f) => f !== "");
}

/**
 * Decide whether to start over with V8 flags: only for wanted flags that
 * neither `DENO_V8_FLAGS` nor a `--v8-flags=` argument already sets (by name,
 * whatever the value: the user's choice wins), and never twice. A restart
 * also sets the {@link MALLOC_DEFAULTS} and {@link NO_PROMPT_DEFAULTS} the
 * environment does not.
 *
 * @example
 * ```ts
 * import { planV8Flags } from "./v8_flags.ts";
 * const plan = planV8Flags({ wanted: "--max-semi-space-size=1", cmdline: ["deno", "run", "-A", "worker.ts"] });
 * console.log(plan); // { restart: true, flags: ["--max-semi-space-size=1"], denoV8Flags: "--max-semi-space-size=1", env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" } }
 * ```
 *
 * @param input see {@link V8FlagsInput}
 * @returns the plan
 */
export function planV8Flags(input: V8FlagsInput): V8FlagsPlan {
  if (input.applied) return { restart: false, reason: "already started with them" };
  const wanted = splitFlags(input.wanted);
  if (wanted.length === 0) return { restart: false, reason: `${V8_FLAGS_ENV} is empty` };
  const given = [
    ...splitFlags(input.denoV8Flags ?? ""),
    ...input.cmdline.filter((a) => a.startsWith("--v8-flags=")).flatMap((a) =>
      splitFlags(a.slice("--v8-flags=".length))
    ),
  ].map(flagName);
  const flags = wanted.filter((f) => !given.includes(flagName(f)));
  if (flags.length === 0) return { restart: false, reason: "the command sets them" };
  const denoV8Flags = [...splitFlags(input.denoV8Flags ?? ""), ...flags].join(",");
  const environment = input.environment ?? {};
  const tunables = environment.GLIBC_TUNABLES ?? "";
  const env = Object.fromEntries(
    Object.entries({ ...MALLOC_DEFAULTS, ...NO_PROMPT_DEFAULTS }).filter(([name]) =>
      environment[name] === undefined &&
      !(name === "MALLOC_ARENA_MAX" && tunables.includes("glibc.malloc.arena_max"))
    ),
  );
  return { restart: true, flags, denoV8Flags, env };
}

/**
 * Whether a CLI command runs with V8 flags of its own (starting over to get
 * them): `worker` ({@link DEFAULT_V8_FLAGS}, whose young generation of 1 MiB
 * instead of V8's growing default cuts its CPU per task) and `dashboard`
 * ({@link DASHBOARD_V8_FLAGS}).
 *
 * @example
 * ```ts
 * import { takesV8Flags } from "./v8_flags.ts";
 * takesV8Flags("dashboard"); // true
 * takesV8Flags("beat"); // false
 * ```
 *
 * @param command the CLI command
 * @returns true for `worker` and `dashboard`
 */
export function takesV8Flags(command: string): boolean {
  return command === "worker" || command === "dashboard";
}

/**
 * The plan for a process run as `cmdline` with `environment`: the flags it
 * wants (`CELERIAC_V8_FLAGS`, else the defaults), over its `DENO_V8_FLAGS`,
 * already applied when the environment says so (see {@link startedWithFlags}).
 *
 * @example
 * ```ts
 * import { planFromEnvironment } from "./v8_flags.ts";
 * const plan = planFromEnvironment(["deno", "run", "-A", "worker.ts"], {});
 * plan.restart; // true
 * ```
 *
 * @param cmdline the process's command line, the executable first
 * @param environment its environment
 * @param defaults the flags wanted when `CELERIAC_V8_FLAGS` is not set. Default
 *   {@link DEFAULT_V8_FLAGS} (the dashboard's: {@link DASHBOARD_V8_FLAGS})
 * @returns what {@link planV8Flags} says for them
 */
export function planFromEnvironment(
  cmdline: string[],
  environment: Record<string, string>,
  defaults: string = DEFAULT_V8_FLAGS,
): V8FlagsPlan {
  return planV8Flags({
    wanted: environment[V8_FLAGS_ENV] ?? defaults,
    denoV8Flags: environment.DENO_V8_FLAGS,
    cmdline,
    applied: startedWithFlags(environment),
    environment,
  });
}

/**
 * The variables a start over with `plan` sets over the environment: the
 * plan's defaults, `DENO_V8_FLAGS`, and the mark that the new process image
 * has them (so that it does not start over again). A program that starts
 * `worker.ts` with `-A` and puts them in its environment gets a worker
 * that runs with the same flags and environment without starting over (the
 * tests' helpers do, to save the second start's CPU).
 *
 * @example
 * ```ts
 * import { planV8Flags, startOverVars } from "./v8_flags.ts";
 * const plan = planV8Flags({ wanted: "--expose-gc", cmdline: ["deno", "run", "-A", "worker.ts"] });
 * if (plan.restart) console.log(startOverVars(plan));
 * // { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1", DENO_V8_FLAGS: "--expose-gc", CELERIAC_V8_FLAGS_APPLIED: "1" }
 * ```
 *
 * @param plan a plan that starts over
 * @returns the variables to set
 */
export function startOverVars(
  plan: Extract<V8FlagsPlan, { restart: true }>,
): Record<string, string> {
  return { ...plan.env, DENO_V8_FLAGS: plan.denoV8Flags, [APPLIED_ENV]: "1" };
}

/**
 * Whether `environment` marks a process image started with the flags (see
 * {@link startOverVars}).
 *
 * @example
 * ```ts
 * import { startedWithFlags } from "./v8_flags.ts";
 * startedWithFlags({ CELERIAC_V8_FLAGS_APPLIED: "1" }); // true
 * ```
 *
 * @param environment a process's environment
 * @returns true when it was
 */
export function startedWithFlags(environment: Record<string, string | undefined>): boolean {
  return environment[APPLIED_ENV] === "1";
}

/**
 * Start this process over with the worker's V8 flags, if they are not in
 * effect and the permissions granted allow it (see the module documentation).
 * On success it does not return: the process image is replaced. Otherwise it
 * returns why not, for a log line once logging is set up. Call it before
 * anything else opens a file or a socket.
 *
 * @example
 * ```ts
 * import { applyV8Flags } from "./v8_flags.ts";
 * const skipped = applyV8Flags();
 * ```
 *
 * @param defaults the flags wanted unless `CELERIAC_V8_FLAGS` says otherwise. Default
 *   {@link DEFAULT_V8_FLAGS} (`worker.ts dashboard` passes {@link DASHBOARD_V8_FLAGS})
 * @returns why the flags were not applied by starting over, or undefined when
 *   this process image is the one started with them
 */
export function applyV8Flags(defaults: string = DEFAULT_V8_FLAGS): string | undefined {
  if (Deno.build.os !== "linux") return "only done on Linux";
  if (compiledRoot(Deno.mainModule) !== null) {
    return "a compiled binary takes them at compile time (deno compile --v8-flags=...)";
  }
  const cannot = cannotStartOver();
  if (cannot) return cannot;
  const environment = Deno.env.toObject();
  if (startedWithFlags(environment)) return undefined;
  const own = ownCommandLine();
  if ("why" in own) return `cannot start over with them (${own.why})`;
  const cmdline = own.argv;
  const plan = planFromEnvironment(cmdline, environment, defaults);
  if (!plan.restart) return plan.reason;
  return `cannot start over with them (${
    execSelf(cmdline, { ...environment, ...startOverVars(plan) })
  })`;
}
