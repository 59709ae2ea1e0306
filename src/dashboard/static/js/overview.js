// Overview: counts and live charts of throughput and runtime percentiles.
import { ErrorBox, get, html, useEffect, useLive, useRef } from "./lib.js";

const STATES = [
  "PENDING",
  "RECEIVED",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "RETRY",
  "REVOKED",
  "REJECTED",
];

function Chart({ title, series, data, yLabel }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = () => Math.max(280, box.current.clientWidth - 16);
    plot.current = new globalThis.uPlot(
      {
        title,
        width: width(),
        height: 220,
        scales: { x: { time: true } },
        axes: [{}, { label: yLabel, size: 60 }],
        series: [{}, ...series],
      },
      data,
      box.current,
    );
    const onResize = () => plot.current.setSize({ width: width(), height: 220 });
    addEventListener("resize", onResize);
    return () => {
      removeEventListener("resize", onResize);
      plot.current.destroy();
    };
  }, []);
  useEffect(() => plot.current?.setData(data), [data]);
  return html`<figure class="chart" ref=${box} aria-label=${title}></figure>`;
}

export function Overview() {
  const [o, error] = useLive(() => get("overview?window=300&step=5"));
  if (!o) {
    return html`
      <h2>Overview</h2>
      <${ErrorBox} error=${error} />
      <p class="muted">Loading…</p>
    `;
  }
  const t = o.series.map((p) => p.t);
  const throughput = [t, o.series.map((p) => p.succeeded), o.series.map((p) => p.failed)];
  const ms = (v) => v == null ? null : v * 1000;
  const runtimes = [
    t,
    o.series.map((p) => ms(p.p50)),
    o.series.map((p) => ms(p.p95)),
    o.series.map((p) => ms(p.p99)),
  ];
  const total = o.series.reduce((n, p) => n + (p.succeeded + p.failed) * 5, 0);
  return html`
    <h2>Overview</h2>
    <${ErrorBox} error=${error} />
    <section class="cards" aria-label="Totals">
      ${o.broker?.state === "unreachable"
        ? html`<div class="card"><div class="n" data-testid="workers-online">unknown</div><div class="l"
          >workers online (broker unreachable)</div></div>`
        : html`<div class="card"><div class="n" data-testid="workers-online">${o.workersOnline} / ${o
          .workersTotal}</div><div class="l">workers online</div></div>`}
      <div class="card"><div class="n">${o.tasksHeld}</div><div class="l">tasks shown</div></div>
      <div class="card"><div class="n" data-testid="finished-5m">${Math.round(
        total,
      )}</div><div class="l">finished, last 5 min</div></div>
      ${STATES.filter((s) => o.states[s]).map((s) =>
        html`
          <div class="card">
            <div class="n">${o.states[s]}</div>
            <div class="l"><a href=${`#/tasks?state=${s}`}>${s.toLowerCase()}</a></div>
          </div>
        `
      )}
    </section>
    <section class="charts">
      <${Chart} title="Throughput (tasks/s)" yLabel="tasks/s" data=${throughput} series=${[
        { label: "succeeded", stroke: "#217a3c", width: 2 },
        { label: "failed", stroke: "#b3261e", width: 2 },
      ]} />
      <${Chart} title="Runtime percentiles (ms)" yLabel="ms" data=${runtimes} series=${[
        // points: a window without tasks has no runtime, and a lone window between two such
        // gaps has no neighbour for a line
        { label: "p50", stroke: "#1f5fa8", width: 2, points: { show: true, size: 5 } },
        { label: "p95", stroke: "#8a5a00", width: 2, points: { show: true, size: 5 } },
        { label: "p99", stroke: "#b3261e", width: 2, points: { show: true, size: 5 } },
      ]} />
    </section>
    <p class="muted">${o
      .events} events received. Charts: 5-second windows over the last 5 minutes.</p>
  `;
}
