// Queues: depth per queue, purge with confirmation, parked messages and requeue.
import { act, ActionButton, ErrorBox, fmtIso, get, html, useLive, useRef, useState } from "./lib.js";

export function Queues({ session }) {
  const [tick, setTick] = useState(0);
  const [q, error] = useLive(() => get("queues"), [tick]);
  const polls = useRef(0);
  // parked messages change rarely: every fifth live message is enough
  const [p, perror] = useLive(
    (msg) => (msg && polls.current++ % 5 ? undefined : get("parked?limit=100")),
    [tick],
  );
  const dialog = useRef(null);
  const [target, setTarget] = useState("");
  const [typed, setTyped] = useState("");
  const [count, setCount] = useState("1");
  const refresh = () => setTick(tick + 1);
  const parked = p?.parked ?? [];
  return html`
    <h2>Queues</h2>
    <${ErrorBox} error=${error} />
    <div class="table-wrap">
      <table data-testid="queues-table">
        <caption>Messages waiting on the broker (taken but unacknowledged ones not counted)</caption>
        <thead>
          <tr><th scope="col">Queue</th><th scope="col" class="num">Depth</th>${session.readOnly
            ? null
            : html`<th scope="col">Action</th>`}</tr>
        </thead>
        <tbody>${(q?.queues ?? []).map((x) =>
          html`<tr data-queue=${x.name}>
        <td class="mono">${x.name}</td><td class="num">${x.depth}</td>
        ${
            session.readOnly ? null : html`<td><button class="danger" onClick=${() => {
              setTarget(x.name);
              setTyped("");
              dialog.current.showModal();
            }}>Purge…</button></td>`
          }
      </tr>`
        )}</tbody>
      </table>
    </div>
    <h3>Parked messages</h3>
    <p
      class="muted">Messages a worker refused (malformed, unknown task, rejected), kept for an operator.</p>
    <${ErrorBox} error=${perror} />
    ${p && p.total > parked.length
      ? html`<p class="muted" data-testid="parked-shown">Showing the oldest ${parked.length.toLocaleString()} of ${p.total
        .toLocaleString()} parked messages.</p>`
      : null}
    ${session.readOnly ? null : html`
      <div class="actions">
        <label>How many (oldest first)<input type="number" min="1" value=${count} onInput=${(e) =>
          setCount(e.target.value)} size="5" /></label>
        <${ActionButton} disabled=${parked.length === 0} onAct=${async () => {
          await act("parked/requeue", { limit: Number(count) });
          refresh();
        }}>Requeue</${ActionButton}>
      </div>
    `}
    <div class="table-wrap">
      <table class="stack" data-testid="parked-table">
        <thead>
          <tr>
            <th scope="col">Parked at</th>
            <th scope="col">Queue</th>
            <th scope="col">Task</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
        ${parked.map((m) =>
          html`
            <tr data-parked=${m.id}>
              <td data-label="Parked at">${fmtIso(m.parkedAt).slice(0, 19)}</td>
              <td class="mono" data-label="Queue">${m.queue}</td>
              <td class="mono" data-label="Task">${m.taskName ?? "?"} ${m.taskId ?? ""}</td>
              <td data-label="Reason">${m.reason}</td>
            </tr>
          `
        )}
        ${parked.length === 0
          ? html`
            <tr>
              <td colspan="4" class="muted">No parked messages.</td>
            </tr>
          `
          : null}
      </tbody>
      </table>
    </div>
    <dialog ref=${dialog} aria-labelledby="purge-title">
      <form method="dialog" onSubmit=${async (e) => {
        e.preventDefault();
        dialog.current.close();
        await act(`queues/${encodeURIComponent(target)}/purge`, { confirm: typed });
        refresh();
      }}>
        <h3 id="purge-title">Purge ${target}?</h3>
        <p>Every waiting message of <strong>${target}</strong> is deleted. Type the queue name to confirm.</p>
        <label>Queue name<input value=${typed} onInput=${(e) =>
          setTyped(e.target.value)} autocomplete="off" /></label>
        <div class="actions">
          <button type="button" onClick=${() => dialog.current.close()}>Cancel</button>
          <button class="danger" type="submit" disabled=${typed !== target}>Purge</button>
        </div>
      </form>
    </dialog>
  `;
}
