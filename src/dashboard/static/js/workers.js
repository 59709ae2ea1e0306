// Workers: the list (online by heartbeat) and one worker with inspect replies and actions.
import {
  act,
  ActionButton,
  Badge,
  ErrorBox,
  fmtIso,
  fmtTime,
  get,
  href,
  html,
  taskHref,
  useBroker,
  useLive,
  useState,
  workerStatus,
} from "./lib.js";

// Where a worker's counts come from: they differ by a heartbeat's lag and by when each started.
const HEARTBEAT = "The worker's count of tasks since it started, as of its last heartbeat";
const SEEN = "Task events this dashboard saw since it started";

export function Workers() {
  const [d, error] = useLive((
    msg,
  ) => (msg && msg.workers.length === 0 ? undefined : get("workers")));
  const workers = d?.workers ?? [];
  const broker = useBroker();
  const caption = broker?.state === "unreachable"
    ? `${workers.length} worker${workers.length === 1 ? "" : "s"}, state unknown: the broker is unreachable`
    : `${workers.filter((w) => w.online).length} of ${workers.length} online`;
  return html`
    <h2>Workers</h2>
    <${ErrorBox} error=${error} />
    <div class="table-wrap">
      <table class="stack">
        <caption>${caption}</caption>
        <thead>
          <tr>
            <th scope="col">Worker</th>
            <th scope="col">Status</th>
            <th scope="col">Language</th>
            <th scope="col" class="num">Active</th>
            <th scope="col" class="num" title=${HEARTBEAT}>Processed</th>
            <th scope="col" class="num" title=${SEEN}>Succeeded</th>
            <th scope="col" class="num" title=${SEEN}>Failed</th>
            <th scope="col" class="num">Pool</th>
            <th scope="col" class="hide-narrow">Queues</th>
            <th scope="col" class="hide-narrow">Load</th>
            <th scope="col" class="hide-narrow">Heartbeat</th>
          </tr>
        </thead>
        <tbody>
        ${workers.map((w) =>
          html`
            <tr data-worker=${w.hostname}>
              <td data-label="Worker"><a href=${href(`/workers/${encodeURIComponent(w.hostname)}`)}>${w
                .hostname}</a></td>
              <td data-label="Status">
                <${Badge} value=${workerStatus(w, broker)} />
              </td>
              <td data-label="Language">${w.language}${w.software ? ` ` : null}${w.software
                ? html`
                  <span class="muted">(${w.software})</span>
                `
                : null}</td>
              <td class="num" data-label="Active">${w.active}</td>
              <td class="num" data-label="Processed">${w.processed}</td>
              <td class="num" data-label="Succeeded">${w.succeeded}</td>
              <td class="num" data-label="Failed">${w.failed}</td>
              <td class="num" data-label="Pool">${w.pool === 0 ? "0 (none)" : w.pool ?? ""}</td>
              <td class="hide-narrow mono" data-label="Queues">${w.queues.join(", ")}</td>
              <td class="hide-narrow" data-label="Load">${w.loadavg.map((n) => n.toFixed(2)).join(" ")}</td>
              <td class="hide-narrow" data-label="Heartbeat">${fmtTime(w.lastHeartbeat)}</td>
            </tr>
          `
        )}
        ${workers.length === 0
          ? html`
            <tr>
              <td colspan="11" class="muted">No worker has sent events yet.</td>
            </tr>
          `
          : null}
      </tbody>
      </table>
    </div>
  `;
}

// Args and kwargs as the API gives their reprs (as the Tasks table shows them); a scheduled
// entry holds the request under `request`, with its ETA. With `actions`, each row has Revoke
// and Terminate: the task table may have evicted a long-running task, whose page is then empty.
function TaskList({ title, list, actions = false }) {
  if (!Array.isArray(list)) return null;
  const eta = list.some((t) => t.request);
  return html`<h3>${title} (${list.length})</h3>
    ${
    list.length === 0 ? html`<p class="muted">None.</p>` : html`
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Id</th>
              ${eta ? html`<th scope="col">ETA</th>` : null}
              <th scope="col">Args</th>
              ${actions ? html`<th scope="col">Actions</th>` : null}
            </tr>
          </thead>
          <tbody>${list.map((t) => {
            const r = t.request ?? t;
            return html`
              <tr>
                <td>${r.name}</td>
                <td class="mono"><a href=${taskHref(r.id)}>${r.id}</a></td>
                ${eta ? html`<td>${fmtIso(t.eta)}</td>` : null}
                <td class="mono">${r.argsrepr ?? ""} ${r.kwargsrepr && r.kwargsrepr !== "{}"
                  ? r.kwargsrepr
                  : ""}</td>
                ${actions ? html`<td><div class="row-actions">${rowActions(r.id)}</div></td>` : null}
              </tr>
            `;
          })}</tbody>
        </table>
      </div>
    `
  }`;
}

function rowActions(id) {
  const path = `tasks/${encodeURIComponent(id)}`;
  return html`<${ActionButton} aria-label=${`Revoke ${id}`} onAct=${() =>
    act(`${path}/revoke`)}>Revoke</${ActionButton}>
    <${ActionButton} class="danger" aria-label=${`Terminate ${id}`} onAct=${() =>
    act(`${path}/terminate`, { signal: "SIGTERM" })}>Terminate</${ActionButton}>`;
}

function Actions({ name }) {
  const [n, setN] = useState("1");
  const [queue, setQueue] = useState("");
  const [task, setTask] = useState("");
  const [rate, setRate] = useState("10/s");
  const [max, setMax] = useState("4");
  const [min, setMin] = useState("1");
  const path = `workers/${encodeURIComponent(name)}`;
  return html`
    <h3>Actions</h3>
    <div class="actions">
      <label>Processes<input type="number" min="1" value=${n} onInput=${(e) =>
        setN(e.target.value)} size="4" /></label>
      <${ActionButton} onAct=${() => act(`${path}/pool_grow`, { n: Number(n) })}>Grow pool</${ActionButton}>
      <${ActionButton} onAct=${() => act(`${path}/pool_shrink`, { n: Number(n) })}>Shrink pool</${ActionButton}>
    </div>
    <div class="actions">
      <label>Max<input type="number" min="1" value=${max} onInput=${(e) =>
        setMax(e.target.value)} size="4" /></label>
      <label>Min<input type="number" min="0" value=${min} onInput=${(e) =>
        setMin(e.target.value)} size="4" /></label>
      <${ActionButton} onAct=${() =>
        act(`${path}/autoscale`, { max: Number(max), min: Number(min) })}>Set autoscale</${ActionButton}>
    </div>
    <div class="actions">
      <label>Queue<input value=${queue} onInput=${(e) => setQueue(e.target.value)} /></label>
      <${ActionButton} onAct=${() => act(`${path}/add_consumer`, { queue })}>Add consumer</${ActionButton}>
      <${ActionButton} onAct=${() => act(`${path}/cancel_consumer`, { queue })}>Cancel consumer</${ActionButton}>
    </div>
    <div class="actions">
      <label>Task name<input value=${task} onInput=${(e) => setTask(e.target.value)} /></label>
      <label>Rate<input value=${rate} onInput=${(e) => setRate(e.target.value)} size="6" /></label>
      <${ActionButton} onAct=${() => act(`${path}/rate_limit`, { task, rate })}>Set rate limit</${ActionButton}>
    </div>
    <div class="actions">
      <${ActionButton} class="danger" onAct=${() =>
        confirm(`Shut down ${name}?`) && act(`${path}/shutdown`)}>Shut down</${ActionButton}>
    </div>
  `;
}

export function WorkerDetail({ name, session }) {
  const [d, error] = useLive(
    (msg) =>
      msg && !msg.workers.some((w) => w.hostname === name)
        ? undefined
        : get(`workers/${encodeURIComponent(name)}`),
    [name],
  );
  const w = d?.worker;
  const i = d?.inspect;
  const broker = useBroker();
  return html`
    <p><a href="#/workers">← Workers</a></p>
    <h2>${name}</h2>
    <${ErrorBox} error=${error} />
    ${w
      ? html`
        <dl class="fields">
          <dt>Status</dt>
          <dd>
            <${Badge} value=${workerStatus(w, broker)} />
          </dd>
          <dt>Language</dt>
          <dd>${w.language}</dd>
          <dt>Software</dt>
          <dd>${w.software ?? "unknown"}</dd>
          <dt>Pid</dt>
          <dd>${w.pid}</dd>
          <dt>Active / processed (the worker's count since it started, at its last heartbeat)</dt>
          <dd>${w.active} / ${w.processed}</dd>
          <dt>Succeeded / failed (task events this dashboard saw since it started)</dt>
          <dd>${w.succeeded} / ${w.failed}</dd>
          <dt>Pool size</dt>
          <dd>${w.pool === 0
            ? "0: no processes, tasks wait until the pool grows"
            : w.pool ?? "unknown (no inspect reply yet)"}${i?.stats?.autoscaler
            ? ` (autoscale ${i.stats.autoscaler.min}–${i.stats.autoscaler.max})`
            : ""}</dd>
          <dt>Queues</dt><dd class="mono">${w.queues.join(", ") || "unknown (no inspect reply yet)"}</dd>
      <dt>Load</dt>
          <dd>${w.loadavg.join(" ")}</dd>
          <dt>Last heartbeat</dt>
          <dd>${fmtTime(w.lastHeartbeat)} (every ${w.freq} s)</dd>
          <dt>Tasks</dt>
          <dd><a href=${href(
            `/tasks?worker=${encodeURIComponent(name)}`,
          )}>this worker's tasks</a></dd>
        </dl>
      `
      : null}
    ${i === null
      ? html`<p class="muted">Inspect replies are not available in this dashboard.</p>`
      : null}
    ${i
      ? html`
        <${TaskList} title="Active" list=${i.active} actions=${!session.readOnly} />
        <${TaskList} title="Reserved" list=${i.reserved} actions=${!session.readOnly} />
        <${TaskList} title="Scheduled" list=${i.scheduled} />
        <h3>Registered tasks</h3>
        <p class="mono">${Array.isArray(i.registered) ? i.registered.join(", ") : "no reply"}</p>
        <h3>Stats</h3>
        <pre>${JSON.stringify(i.stats, null, 2)}</pre>
      `
      : null}
    ${session.readOnly ? null : html`<${Actions} name=${name} />`}
  `;
}
