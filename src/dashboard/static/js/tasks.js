// Tasks: the live table with filters and paging, and one task's detail.
import {
  act,
  ActionButton,
  Badge,
  ErrorBox,
  fmtDate,
  fmtIso,
  fmtSecs,
  fmtTime,
  get,
  href,
  html,
  taskHref,
  useEffect,
  useLive,
  useState,
} from "./lib.js";

const STATES = [
  "",
  "PENDING",
  "RECEIVED",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "RETRY",
  "REVOKED",
  "REJECTED",
];
const PAGE = 25;

function setParams(params) {
  const q = new URLSearchParams([...params].filter(([, v]) => v !== ""));
  location.hash = `#/tasks${q.size ? `?${q}` : ""}`;
}

export function Tasks({ params: asked, session }) {
  // With args hidden, a link's text filter (made before, or elsewhere) is dropped: the
  // server refuses it and the page has no field to clear it with.
  const visible = (p) => {
    if (session.hideArgs) p.delete("text");
    return p;
  };
  const params = visible(new URLSearchParams(asked));
  const offset = Number(params.get("offset") ?? 0);
  const query = new URLSearchParams(params);
  query.set("limit", String(PAGE));
  const key = query.toString();
  const [d, error] = useLive(
    (msg) => (msg && msg.tasks.length === 0 ? undefined : get(`tasks?${key}`)),
    [key],
  );
  const [workers] = useLive((
    msg,
  ) => (msg && msg.workers.length === 0 ? undefined : get("workers")));
  // Text typed in a field and not applied yet: the field shows it through the table's
  // refreshes (each re-renders the form) until the filters change
  const [typed, setTyped] = useState({});
  useEffect(() => setTyped({}), [params.toString()]);
  const field = (name) => typed[name] ?? params.get(name) ?? "";
  const onInput = (name) => (e) => {
    const value = e.target.value;
    setTyped((t) => ({ ...t, [name]: value }));
  };
  const onChange = (name) => (e) => {
    const p = new URLSearchParams(params);
    p.set(name, e.target.value);
    p.delete("offset");
    p.delete("cursor");
    setParams(p);
  };
  // Enter in a text field applies every field at once
  const onSubmit = (e) => {
    e.preventDefault();
    const p = new URLSearchParams(params);
    for (const [k, v] of new FormData(e.target)) p.set(k, String(v));
    p.delete("offset");
    p.delete("cursor");
    setParams(p);
  };
  // From the address at the click, not this render's params: an Older pressed again before
  // the table re-rendered for the last one goes a page further, not to the same page again.
  // Past the first page the pages are anchored on the cursor of the page seen (as
  // bull-board's and Flower's): tasks that arrive meanwhile shift no row onto the next page.
  // Back on the first, it follows new tasks again.
  const page = (step) => () => {
    const p = visible(new URLSearchParams(location.hash.split("?")[1] ?? ""));
    const next = Math.max(0, (Number(p.get("offset")) || 0) + step);
    p.set("offset", String(next));
    if (next === 0) p.delete("cursor");
    else if (!p.has("cursor") && d) p.set("cursor", String(d.cursor));
    setParams(p);
  };
  const newest = () => {
    const p = new URLSearchParams(params);
    p.delete("offset");
    p.delete("cursor");
    setParams(p);
  };
  const total = d?.total ?? 0;
  return html`
    <h2>Tasks</h2>
    <form class="filters" role="search" onSubmit=${onSubmit}>
      <label>State<select name="state" value=${params.get("state") ?? ""} onChange=${onChange(
        "state",
      )}>
        ${STATES.map((s) => html`<option value=${s}>${s || "any"}</option>`)}
      </select></label>
      <label>Name<input name="name" list="task-names" value=${field("name")} onInput=${onInput(
        "name",
      )} onChange=${onChange("name")} /></label>
      <datalist id="task-names">${(d?.names ?? []).map((n) =>
        html`<option value=${n} />`
      )}</datalist>
      <label>Worker<select name="worker" value=${params.get("worker") ?? ""} onChange=${onChange(
        "worker",
      )}>
        <option value="">any</option>
        ${(workers?.workers ?? []).map((w) =>
          html`<option value=${w.hostname}>${w.hostname}</option>`
        )}
      </select></label>
      ${session.hideArgs
        ? null
        : html`<label>Text in id, args, result<input name="text" type="search" value=${
          field("text")
        } onInput=${onInput("text")} onChange=${onChange("text")} /></label>`}
      <button type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${error} />
    <div class="table-wrap">
      <table class="stack" data-testid="tasks-table">
        <caption>${total} task(s), newest first</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col" class="hide-narrow">Id</th>
            <th scope="col">Args</th>
            <th scope="col">Result</th>
            <th scope="col" class="hide-narrow">Worker</th>
            <th scope="col" class="hide-narrow">Seen</th>
            <th scope="col" class="num">Runtime</th>
          </tr>
        </thead>
        <tbody>
        ${(d?.tasks ?? []).map((t) =>
          html`
            <tr data-task=${t.uuid}>
              <td data-label="Name"><a href=${taskHref(t.uuid)}>${t.name ?? "?"}</a></td>
              <td data-label="State">
                <${Badge} value=${t.state} />
              </td>
              <td class="mono hide-narrow nowrap" data-label="Id">${t.uuid.slice(0, 8)}…</td>
              <td class="mono" data-label="Args"><div class="clip">${t.args ?? ""} ${t.kwargs &&
                  t.kwargs !== "{}"
                ? t.kwargs
                : ""}</div></td>
              <td class="mono" data-label="Result"><div class="clip">${t.result ?? t.exception ??
                ""}</div></td>
              <td class="hide-narrow" data-label="Worker">${t.worker ?? ""}</td>
              <td class="hide-narrow" data-label="Seen">${fmtTime(t.firstSeen)}</td>
              <td class="num" data-label="Runtime">${fmtSecs(t.runtime)}</td>
            </tr>
          `
        )}
      </tbody>
      </table>
    </div>
    <p class="muted" role="status" data-testid="newer-tasks">${d?.newer
      ? html`
        ${d.newer} newer task(s) since these pages were opened
        <button type="button" onClick=${newest}>Show newest</button>
      `
      : null}</p>
    <nav class="pager" aria-label="Pages of tasks">
      <button disabled=${offset === 0} onClick=${page(-PAGE)}>Newer</button>
      <span>${total ? offset + 1 : 0}–${Math.min(total, offset + PAGE)} of ${total}</span>
      <button disabled=${offset + PAGE >= total} onClick=${page(PAGE)}>Older</button>
    </nav>
  `;
}

function Link({ t }) {
  if (!t) return html`<span class="muted">none</span>`;
  return html`<a class="mono" href=${taskHref(t.uuid)}>${t.name ?? "?"} ${
    t.uuid.slice(0, 8)
  }…</a> ${t.state ? html`<${Badge} value=${t.state} />` : null}`;
}

export function TaskDetail({ id, session }) {
  const [d, error] = useLive(
    (msg) =>
      msg && !msg.more && !msg.tasks.some((t) => t.uuid === id) ? undefined : get(`tasks/${encodeURIComponent(id)}`),
    [id],
  );
  const [signal, setSignal] = useState("SIGTERM");
  const [queue, setQueue] = useState(null);
  const t = d?.task;
  const finished = t && ["SUCCESS", "FAILURE", "REVOKED", "REJECTED"].includes(t.state);
  // What the server sends again: a task that did not succeed, of which task-received gave
  // the name and the arguments (a worker that refuses an unregistered task sends only
  // task-failed)
  const retryable = t && ["FAILURE", "REVOKED", "REJECTED"].includes(t.state);
  const known = t && t.name !== null && t.args !== null;
  // Events keep a retry's exception and traceback through the attempts after it: on a task
  // that did not fail (it may have succeeded since), they are the last retry's
  const fromRetry = t && t.state !== "FAILURE" && t.exception != null;
  const path = `tasks/${encodeURIComponent(id)}`;
  return html`
    <p><a href="#/tasks">← Tasks</a></p>
    <h2>${t?.name ?? "Task"} <span class="mono muted">${id}</span></h2>
    <${ErrorBox} error=${error} />
    ${t
      ? html`
        <dl class="fields" data-testid="task-fields">
          <dt>State</dt>
          <dd data-testid="task-state" tabindex="-1" data-focus-fallback>
            <${Badge} value=${t.state} />
          </dd>
          <dt>Args</dt>
          <dd class="mono">${t.args}</dd>
          <dt>Kwargs</dt>
          <dd class="mono">${t.kwargs}</dd>
          <dt>Result</dt>
          <dd class="mono">${t.result ?? ""}</dd>
          <dt>${fromRetry ? "Exception (last retry)" : "Exception"}</dt>
          <dd class="mono">${t.exception ?? ""}</dd>
          <dt>Worker</dt>
          <dd>${t.worker
            ? html`<a href=${href(`/workers/${encodeURIComponent(t.worker)}`)}>${t.worker}</a>`
            : ""}</dd>
          <dt>Retries</dt>
          <dd>${t.retries}</dd>
          <dt>Runtime</dt>
          <dd>${fmtSecs(t.runtime)}</dd>
          <dt>ETA / expires</dt>
          <dd>${fmtIso(t.eta)} / ${fmtIso(t.expires)}</dd>
          <dt>Parent</dt>
          <dd>
            <${Link} t=${d.parent} />
          </dd>
          <dt>Root</dt>
          <dd>
            <${Link} t=${d.root} />
          </dd>
        </dl>
        ${t.traceback
          ? html`
            <h3>${fromRetry ? "Traceback (last retry)" : "Traceback"}</h3>
            <pre data-testid="traceback">${t.traceback}</pre>
          `
          : null}
        ${session.readOnly ? null : html`<div class="actions">
        <${ActionButton} disabled=${finished} onAct=${() => act(`${path}/revoke`)}>Revoke</${ActionButton}>
        <label>Signal<select value=${signal} onChange=${(e) => setSignal(e.target.value)}>
          ${["SIGTERM", "SIGKILL", "SIGINT"].map((s) => html`<option>${s}</option>`)}
        </select></label>
        <${ActionButton} class="danger" disabled=${finished} onAct=${() =>
          act(`${path}/terminate`, { signal })}>Terminate</${ActionButton}>
        ${
          retryable && !known
            ? html`<p class="muted" data-testid="no-retry">No Retry: the dashboard saw no task-received event for this task, so it does not know its name and arguments.</p>`
            : null
        }
        ${
          retryable && known
            ? html`${d.queues.length > 1
              ? html`<label>To queue<select value=${queue ?? d.queues[0]} onChange=${(e) =>
                setQueue(e.target.value)}>
                ${d.queues.map((q) => html`<option>${q}</option>`)}
              </select></label>`
              : null}<${ActionButton} class="primary" onAct=${async () => {
              const body = d.queues.length > 1 ? { queue: queue ?? d.queues[0] } : {};
              const r = await act(`${path}/retry`, body);
              if (r?.id) location.hash = taskHref(r.id);
            }}>Retry (send again${d.queues.length === 1 ? ` to ${d.queues[0]}` : ""})</${ActionButton}>`
            : null
        }
      </div>`}
        <h3>Timeline</h3>
        <ol class="timeline" data-testid="timeline">
          ${t.timeline.map((s, i) =>
            html`<li><${Badge} value=${s.state} /> ${fmtDate(s.timestamp)}${" "}
          <span class="muted">${s.hostname}${
              i ? ` (+${fmtSecs(s.timestamp - t.timeline[i - 1].timestamp)})` : ""
            }</span></li>`
          )}
        </ol>
        ${d.workflow.length > 1
          ? html`
            <h3>Workflow</h3>
            <ol class="steps" aria-label="Workflow steps from the root">
                      ${d.workflow.map((w, i) =>
                        html`
                          <li class=${[
                            w.uuid === id ? "current" : "",
                            i && w.depth > d.workflow[i - 1].depth ? "next" : "",
                          ].join(" ").trim()}>
                            <${Link} t=${w} />
                          </li>
                        `
                      )}
                    </ol>
          `
          : null}
        ${d.children.length
          ? html`
            <h3>Children (${d.children.length})</h3>
            <ul>${d.children.map((c) =>
              html`
                <li>
                  <${Link} t=${c} />
                </li>
              `
            )}</ul>
          `
          : null}
      `
      : null}
  `;
}
