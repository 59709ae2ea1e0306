// The dashboard shell: header, navigation, hash routing.
import {
  dismissAlert,
  fmtTime,
  getSession,
  html,
  live,
  onLive,
  render,
  useBroker,
  useEffect,
  useState,
} from "./lib.js";
import { Overview } from "./overview.js";
import { WorkerDetail, Workers } from "./workers.js";
import { TaskDetail, Tasks } from "./tasks.js";
import { Queues } from "./queues.js";

const PAGES = [
  ["overview", "Overview"],
  ["workers", "Workers"],
  ["tasks", "Tasks"],
  ["queues", "Queues"],
];

function route() {
  const raw = location.hash.replace(/^#\/?/, "") || "overview";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p; // a % typed in the address bar that starts no escape
    }
  });
  return { parts, params: new URLSearchParams(query) };
}

function LiveState() {
  const [on, setOn] = useState(live.connected);
  useEffect(() => onLive(() => setOn(true)), []);
  useEffect(() => {
    const t = setInterval(() => setOn(live.connected), 2000);
    return () => clearInterval(t);
  }, []);
  return html`<span class="live" aria-live="polite">${on ? "● live" : "○ connecting…"}</span>`;
}

/** While the broker is unreachable: says so, and why every worker's state is unknown. */
function BrokerBanner() {
  const broker = useBroker();
  if (broker?.state !== "unreachable") return null;
  return html`
    <div class="banner" role="alert" data-testid="broker-banner">
      <strong>Broker unreachable</strong> since ${fmtTime(broker.since)}: workers' state is unknown
      and no events arrive until it answers again (the dashboard keeps trying).
      ${broker.error ? html`<div class="muted">${broker.error}</div>` : null}
    </div>
  `;
}

function App({ session }) {
  const [r, setR] = useState(route());
  useEffect(() => {
    let shown = route().parts.join("/");
    const onHash = () => {
      const next = route();
      setR(next);
      // Another page: its content takes the focus, for a screen reader to read from there.
      // Another filter or page of the same table keeps it on the control that asked for it
      // (a State select moved with the arrow keys, the pager's Older).
      if (next.parts.join("/") === shown) return;
      shown = next.parts.join("/");
      document.getElementById("main")?.focus();
    };
    // Escape dismisses an action's error (kept until then: see toast)
    const onKey = (e) => e.key === "Escape" && !document.querySelector("dialog[open]") && dismissAlert();
    addEventListener("hashchange", onHash);
    addEventListener("keydown", onKey);
    return () => {
      removeEventListener("hashchange", onHash);
      removeEventListener("keydown", onKey);
    };
  }, []);
  const [page, id] = r.parts;
  let view;
  if (page === "workers" && id) view = html`<${WorkerDetail} name=${id} session=${session} />`;
  else if (page === "workers") view = html`<${Workers} />`;
  else if (page === "tasks" && id) view = html`<${TaskDetail} key=${id} id=${id} session=${session} />`;
  else if (page === "tasks") view = html`<${Tasks} params=${r.params} session=${session} />`;
  else if (page === "queues") view = html`<${Queues} session=${session} />`;
  else view = html`<${Overview} />`;
  const current = PAGES.some(([p]) => p === page) ? page : "overview";
  useEffect(() => {
    document.title = `${PAGES.find(([p]) => p === current)[1]} · Celeriac dashboard`;
  }, [current]);
  return html`
    <header>
      <h1>Celeriac</h1>
      <nav aria-label="Pages"><ul>
        ${PAGES.map(([p, label]) =>
          html`<li><a href=${`#/${p}`} aria-current=${
            p === current ? "page" : undefined
          }>${label}</a></li>`
        )}
      </ul></nav>
      <${LiveState} />
      ${session.readOnly ? html`<span class="badge">read-only</span>` : null}
    </header>
    <${BrokerBanner} />
    <main id="main" tabindex="-1">${view}</main>
    <div class="toasts">
      <div id="alert" class="toast error" role="alert" hidden>
        <span></span><button type="button" onClick=${dismissAlert}>Dismiss</button>
      </div>
      <div id="toast" class="toast" role="status" aria-live="polite" hidden></div>
    </div>
  `;
}

getSession().then(
  (session) => {
    const root = document.getElementById("app");
    root.textContent = "";
    render(html`<${App} session=${session} />`, root);
  },
  (err) => {
    document.getElementById("app").textContent = `Cannot reach the dashboard API: ${err.message}`;
  },
);
