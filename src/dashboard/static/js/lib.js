// Shared pieces of the dashboard UI: views (preact + htm), the JSON API,
// the live stream, formatting.
import { h, render } from "../vendor/preact.mjs";
import { useEffect, useRef, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";

export const html = htm.bind(h);
export { render, useEffect, useRef, useState };

let session = null;

/** The session: CSRF token, read-only, hide-args. */
export async function getSession() {
  session ??= await get("session");
  return session;
}

async function answer(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

/** GET /api/<path>. */
export async function get(path) {
  return answer(await fetch(`api/${path}`, { headers: { accept: "application/json" } }));
}

/**
 * POST /api/<path> with a JSON body and the CSRF token. A token refused is asked for again
 * once and the action sent again (it was refused before anything was done): the dashboard
 * restarted since the page loaded, with a token of its own.
 */
export async function post(path, body = {}) {
  const send = async () =>
    await fetch(`api/${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-csrf-token": (await getSession()).csrfToken,
      },
      body: JSON.stringify(body),
    });
  let res = await send();
  if (res.status === 403) {
    const refused = await res.clone().json().catch(() => null);
    if (refused?.error?.code === "csrf") {
      session = null;
      res = await send();
    }
  }
  return answer(res);
}

const listeners = new Set();
let source = null;
export const live = { connected: false, last: null };

/** Seconds before the next try to open a stream given up for good: 1, 2, 4… at most 30. */
let retryIn = 1;
/** The stream dropped since it last opened: the views load anew when it opens again. */
let broken = false;

/**
 * Open the live stream. The browser retries a stream that drops or cannot connect on its
 * own, but a non-200 answer (a reverse proxy's 502 while the dashboard restarts) closes it
 * for good: that one is opened anew here, after 1, 2, 4… s (at most 30 s) of backoff.
 */
function openStream() {
  const es = new EventSource("api/stream");
  source = es;
  es.onopen = () => {
    live.connected = true;
    retryIn = 1;
    // Reconnected (the dashboard restarted, or closed a stream that fell behind): what
    // changed meanwhile came in no message, so every view loads anew.
    if (broken) for (const l of listeners) l(null);
    broken = false;
  };
  es.onerror = () => {
    live.connected = false;
    broken = true;
    if (es.readyState !== EventSource.CLOSED) return;
    es.close();
    if (source === es) source = null;
    setTimeout(() => source ?? openStream(), retryIn * 1000);
    retryIn = Math.min(retryIn * 2, 30);
  };
  es.onmessage = (e) => {
    live.connected = true;
    live.last = JSON.parse(e.data);
    for (const l of listeners) l(live.last);
  };
}

/** Subscribe to the live stream; returns the unsubscribe function. */
export function onLive(fn) {
  listeners.add(fn);
  if (!source) openStream();
  return () => listeners.delete(fn);
}

/**
 * The broker's status as the live stream last told it (`{state, since, error}`; state is
 * "unknown", "reachable" or "unreachable"), or null before the first message.
 */
export function useBroker() {
  const [broker, setBroker] = useState(live.last?.overview?.broker ?? null);
  useEffect(() => onLive((msg) => msg && setBroker(msg.overview?.broker ?? null)), []);
  return broker;
}

/**
 * A worker's status: "online" / "offline" by heartbeat, or, while the broker is unreachable
 * (no heartbeat can arrive), "unknown (broker unreachable)".
 */
export const workerStatus = (w, broker) =>
  broker?.state === "unreachable" ? "unknown (broker unreachable)" : w.online ? "online" : "offline";

/**
 * Re-render on every live message, calling `fetcher(msg)`: it returns a
 * promise of the data, or undefined when `msg` changes nothing it shows
 * (`msg` is null for the first load). One fetch at a time: the messages
 * that arrive while one is in flight are kept, and when it ends the first
 * of them that calls for a fetch gets one (newer than all of them; past 8
 * kept, one is due in any case), so a change is never dropped for arriving
 * at the wrong moment. New `deps`
 * start afresh: a fetch still in flight for the old ones is not waited
 * for, and its answer is not shown.
 */
export function useLive(fetcher, deps = []) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let alive = true;
    let busy = false;
    const waiting = [];
    const ask = (msg) => {
      try {
        return fetcher(msg);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const load = async (msg) => {
      if (busy) {
        // Bounded while a fetch hangs: past a few, one more fetch is due whatever they hold.
        if (waiting.length < 8) waiting.push(msg);
        else waiting[0] = null;
        return;
      }
      busy = true;
      let pending = ask(msg);
      while (alive && pending !== undefined) {
        try {
          const d = await pending;
          if (alive) {
            setData(d);
            setError(null);
          }
        } catch (err) {
          if (alive) setError(err.message);
        }
        pending = undefined;
        for (const m of waiting.splice(0)) pending ??= ask(m);
      }
      busy = false;
    };
    load(null);
    const off = onLive(load);
    return () => {
      alive = false;
      off();
    };
  }, deps);
  return [data, error];
}

let toastTimer = 0;
/**
 * Report an action's outcome. A success shows for 5 s in the status region (read out politely);
 * an error is an alert (read out at once) and stays until dismissed (its button, or Escape).
 */
export function toast(message, isError = false) {
  if (isError) {
    const el = document.getElementById("alert");
    if (!el) return;
    el.querySelector("span").textContent = message;
    el.hidden = false;
    return;
  }
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.hidden = true, 5000);
}

/** Hide the error an action reported, if one shows. */
export function dismissAlert() {
  const el = document.getElementById("alert");
  if (el) el.hidden = true;
}

/** Run an action and report its outcome. */
export async function act(path, body) {
  try {
    const r = await post(path, body);
    toast(r.message ?? "Done");
    return r;
  } catch (err) {
    toast(err.message, true);
    return null;
  }
}

/**
 * A button for an action: `onAct` (async) runs once per click, and the
 * button stays disabled (`aria-busy`) until it settles, so a double click
 * sends one request (a second retry would send the task twice). Disabled
 * while it has the keyboard focus, which the browser then drops to the
 * page's start, it hands the focus on: back to itself once it runs no more,
 * or, disabled for good (a task revoked meanwhile), to the page's
 * `[data-focus-fallback]` element (else the main region).
 */
export function ActionButton({ onAct, disabled = false, children, ...rest }) {
  const running = useRef(false);
  const button = useRef(null);
  const hadFocus = useRef(false);
  const [busy, setBusy] = useState(false);
  const off = disabled || busy;
  useEffect(() => {
    const active = document.activeElement;
    if (!hadFocus.current || (active && active !== button.current && active !== document.body)) {
      return;
    }
    if (!off) button.current?.focus();
    else if (disabled) {
      (document.querySelector("[data-focus-fallback]") ?? document.getElementById("main"))?.focus();
      hadFocus.current = false;
    }
  }, [off]);
  const run = async () => {
    if (running.current) return;
    running.current = true;
    setBusy(true);
    try {
      await onAct();
    } finally {
      running.current = false;
      setBusy(false);
    }
  };
  return html`<button ...${rest} ref=${button} disabled=${off} aria-busy=${busy ? "true" : null}
    onFocus=${() => hadFocus.current = true}
    onBlur=${(e) => hadFocus.current = e.relatedTarget === null}
    onClick=${run}>${children}</button>`;
}

export const fmtTime = (s) => s == null ? "" : new Date(s * 1000).toLocaleTimeString();
// Date and time in the browser's time zone, as fmtTime's, to the millisecond
export const fmtDate = (s) => {
  if (s == null || !Number.isFinite(s)) return "";
  const d = new Date(s * 1000);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
};
// An ISO 8601 time from a message (eta, expires, parked at) as fmtDate gives it, else as sent
export const fmtIso = (iso) => {
  if (iso == null) return "—";
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : fmtDate(ms / 1000);
};
export const fmtSecs = (s) =>
  s == null ? "" : s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`;

export function Badge({ value }) {
  return html`<span class=${`badge s-${String(value).split(" ")[0]}`}>${value}</span>`;
}

export function ErrorBox({ error }) {
  return error ? html`<p class="error-box" role="alert">${error}</p>` : null;
}

/** A link inside the single-page app. */
export const href = (path) => `#${path}`;

/** The link to a task's page: its id encoded (a task id may hold `/`, `?`, `#` or `%`). */
export const taskHref = (id) => href(`/tasks/${encodeURIComponent(id)}`);
