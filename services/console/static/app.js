// hyp-local console: renders the snapshots the server pushes (server-sent events, about one a second).
// Everything is written with textContent: values from the stack never become HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let latest = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (Math.abs(v) >= 1e4) return Math.round(v).toLocaleString("en");
  return Number.isInteger(v) ? v.toLocaleString("en") : v.toFixed(digits);
}
const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %");
const ms = (s) => (s === null || s === undefined ? "–" : s < 1 ? (1000 * s).toFixed(0) + " ms" : s.toFixed(2) + " s");
const age = (s) => (s === null || s === undefined ? "–" : s < 120 ? s.toFixed(0) + " s" : (s / 60).toFixed(1) + " min");

function fillBody(table, rows) {
  const body = table.tBodies[0];
  const frag = document.createDocumentFragment();
  for (const cells of rows) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el("td", c.text ?? c, c.cls);
      if (c.title) td.title = c.title;
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
}
const num = (v, d) => ({ text: fmt(v, d), cls: "num" });

function renderServices(services) {
  const list = $("services");
  list.replaceChildren(
    ...services.map((s) => {
      const li = el("li", `${s.healthy ? "✓" : "✗"} ${s.label}: ${s.healthy ? "healthy" : "unhealthy"}`, s.healthy ? "good" : "bad");
      li.dataset.service = s.key;
      li.dataset.healthy = String(s.healthy);
      if (s.error) li.title = s.error;
      return li;
    })
  );
  for (const s of services) {
    const node = document.querySelector(`#diagram [data-node="${s.key}"]`);
    if (!node) continue;
    node.classList.toggle("healthy", s.healthy);
    node.classList.toggle("unhealthy", !s.healthy);
    node.querySelector(".state").textContent = s.healthy ? "✓ healthy" : "✗ unhealthy";
    let title = node.querySelector("title");
    if (!title) node.prepend((title = document.createElementNS("http://www.w3.org/2000/svg", "title")));
    title.textContent = s.healthy ? `${s.label}: healthy` : `${s.label}: ${s.error || "unhealthy"}`;
  }
}

function kpi(label, value) {
  const d = el("div", null, "kpi");
  d.append(el("div", value, "v"), el("div", label, "k"));
  return d;
}

function renderDetector(snap) {
  const d = snap.detector || {};
  const live = snap.live || {};
  const events = snap.pubsub?.events_per_s ?? d.events_per_s;
  $("kpis").replaceChildren(
    kpi("events/s", fmt(events)),
    kpi("detector events/s", fmt(d.events_per_s)),
    kpi("anomalies/s", fmt(d.anomalies_per_s ?? snap.pubsub?.detections_per_s)),
    kpi("latency p50", ms(d.latency_p50)),
    kpi("latency p95", ms(d.latency_p95)),
    kpi("latency p99", ms(d.latency_p99)),
    kpi("batch size mean", fmt(d.batch_mean)),
    kpi("batch size p95", fmt(d.batch_p95)),
    kpi("model version", d.model_version ?? "–"),
    kpi("dead-lettered", fmt(d.dead_lettered ?? snap.pubsub?.dead_lettered)),
    kpi("precision", pct(live.precision)),
    kpi("recall", pct(live.recall))
  );
  $("detector").dataset.healthy = String(!!d.healthy);
  const workers = d.workers || [];
  $("workers-box").hidden = workers.length === 0;
  fillBody($("workers"), workers.map((w) => [
    w.worker, { text: w.healthy === false ? `✗ down: ${w.error || "no answer"}` : "✓ up", cls: w.healthy === false ? "bad" : "good" },
    num(w.events_per_s), num(w.anomalies_per_s), { text: ms(w.latency_p99), cls: "num" }, w.model_version ?? "–",
  ]));
}

function chart(svg, series) {
  const W = 600, H = 150, L = 52, B = 18, T = 8;
  const all = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined));
  const max = Math.max(1, ...all) * 1.1;
  const t1 = Math.max(...series.flatMap((s) => s.points.map((p) => p[0])), 1);
  const t0 = t1 - 300;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 4);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const parts = [];
  for (const f of [0, 0.5, 1]) {
    const line = document.createElementNS(ns, "line");
    line.setAttribute("x1", L); line.setAttribute("x2", W); line.setAttribute("y1", y(max * f)); line.setAttribute("y2", y(max * f));
    line.setAttribute("class", "grid");
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2); label.setAttribute("y", y(max * f) + 5); label.setAttribute("class", "axis");
    label.textContent = fmt(max * f, max < 10 ? 1 : 0);
    parts.push(line, label);
  }
  const tl = document.createElementNS(ns, "text");
  tl.setAttribute("x", L); tl.setAttribute("y", H - 2); tl.setAttribute("class", "axis"); tl.textContent = "last 5 min";
  parts.push(tl);
  for (const s of series) {
    const pts = s.points.filter((p) => p[1] !== null && p[1] !== undefined && p[0] >= t0);
    if (pts.length < 2) continue;
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("points", pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
    pl.setAttribute("class", s.cls);
    parts.push(pl);
  }
  svg.replaceChildren(...parts);
}

function renderRates(live) {
  const pts = live.series || [];
  chart($("chart-events"), [{ cls: "s1", points: pts.map((p) => [p.t, p.events_per_s]) }]);
  chart($("chart-anomalies"), [
    { cls: "s2", points: pts.map((p) => [p.t, p.detections_per_s]) },
    { cls: "s3", points: pts.map((p) => [p.t, p.labelled_per_s]) },
  ]);
}

function renderPubsub(p) {
  const err = $("pubsub-error");
  err.hidden = !!p.healthy;
  err.textContent = p.healthy ? "" : `Pub/Sub unreachable: ${p.error || "unknown"}`;
  fillBody($("topics"), (p.topics || []).map((t) => [t.name, num(t.published), num(t.publish_rate)]));
  fillBody(
    $("subscriptions"),
    (p.subscriptions || []).map((s) => [
      s.name, num(s.backlog), { text: age(s.oldest_unacked_s), cls: "num" }, num(s.delivery_rate), num(s.ack_rate), num(s.dead_lettered),
    ])
  );
}

const STATUS_CLASS = { detected: "status-detected", "false alarm": "status-false", missed: "status-missed", injected: "status-injected" };

function renderAnomalies(live) {
  const q = $("anomaly-filter").value.trim().toLowerCase();
  const want = $("anomaly-status").value;
  const rows = (live.anomalies || []).filter((a) => {
    if (want && a.status !== want) return false;
    if (!q) return true;
    return [a.user_id, a.kind, a.model_version, a.status, a.key, a.message_id].some((v) => v && String(v).toLowerCase().includes(q));
  });
  fillBody(
    $("anomaly-table"),
    rows.map((a) => [
      { text: a.event_datetime ?? new Date(a.seen_at * 1000).toISOString().replace("T", " ").slice(0, 19), title: a.message_id ? `message ${a.message_id}` : "" },
      a.user_id ?? "–", num(a.value, 2), num(a.tax, 2), num(a.shipping, 2), num(a.score, 3),
      a.model_version ?? "–", a.kind ?? (a.label === "0" ? "(normal)" : "–"),
      { text: a.status, cls: STATUS_CLASS[a.status] || "" },
    ])
  );
  $("anomaly-count").textContent = `${rows.length} shown · ${fmt(live.labelled)} injected · ${fmt(live.detections)} detected`;
  const f = live.feeds || {};
  $("feeds-state").textContent = f.healthy ? (f.filtered === false ? "live feed (unfiltered)" : "live feed") : `live feed down: ${f.error || "–"}`;
}

function renderModels(m) {
  $("model-name").textContent = m.alias ? `(alias @${m.alias})` : "";
  const err = $("models-error");
  err.hidden = !m.error;
  err.textContent = m.error || "";
  $("champion").textContent = m.champion ? `v${m.champion}` : "–";
  $("champion-history").textContent = (m.champion_history || []).length > 1
    ? "history: " + m.champion_history.map((h) => `v${h.version} @ ${new Date(h.since * 1000).toLocaleTimeString()}`).join(" → ")
    : "";
  renderVersionActions(m); // models.js: metrics side by side, promote buttons
}

function renderOrchestrator(o) {
  $("orch-state").textContent = o.healthy ? `${(o.runs || []).length} recent runs` : `not running (${o.error || "unreachable"})`;
  renderRuns(o.runs || []); // models.js: one row per run, each with a button that follows its steps
}

function renderWarehouse(w) {
  const items = Object.entries(w.tables || {}).map(([name, n]) => {
    const li = el("li");
    li.dataset.table = name;
    li.append(el("span", name + ": "), el("b", fmt(n)));
    return li;
  });
  if (!w.healthy) items.push(el("li", `unavailable: ${w.error || ""}`, "bad"));
  $("table-counts").replaceChildren(...items);
}

function render(snap) {
  latest = snap;
  $("project").textContent = `project ${snap.project}`;
  $("updated").textContent = "updated " + new Date(snap.t * 1000).toLocaleTimeString();
  $("link-mlflow").setAttribute("href", snap.links.mlflow);
  $("link-endpoint").setAttribute("href", snap.links.endpoint_docs);
  renderServices(snap.services || []);
  renderDetector(snap);
  renderRates(snap.live || {});
  renderPubsub(snap.pubsub || {});
  renderAnomalies(snap.live || {});
  renderModels(snap.models || {});
  renderOrchestrator(snap.orchestrator || {});
  renderWarehouse(snap.warehouse || {});
}

function connect() {
  const state = $("stream-state");
  const source = new EventSource("/api/stream");
  source.addEventListener("open", () => { state.textContent = "● live"; state.className = "pill good"; });
  source.addEventListener("error", () => { state.textContent = "✗ reconnecting"; state.className = "pill bad"; });
  source.addEventListener("snapshot", (e) => {
    try { render(JSON.parse(e.data)); } catch (err) { console.warn("bad snapshot", err); }
  });
}

async function runSql(event) {
  event.preventDefault();
  const err = $("sql-error"), info = $("sql-info"), table = $("sql-result");
  err.hidden = true;
  info.textContent = "running…";
  let body;
  try {
    const r = await fetch("/api/sql", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sql: $("sql").value }) });
    body = await r.json();
    if (!r.ok) throw new Error(body.error || (body.detail && JSON.stringify(body.detail)) || `HTTP ${r.status}`);
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    info.textContent = "";
    return;
  }
  const head = el("tr");
  body.columns.forEach((c) => head.appendChild(el("th", c)));
  table.tHead.replaceChildren(head);
  fillBody(table, body.rows.map((r) => r.map((v) => (v === null ? "NULL" : typeof v === "number" ? num(v, 3) : String(v)))));
  info.textContent = `${body.total_rows} row(s)` + (body.truncated ? `, first ${body.rows.length} shown` : "");
}

function setupTheme() {
  const saved = localStorage.getItem("hyp-theme");
  const prefersLight = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches;
  document.documentElement.dataset.theme = saved || (prefersLight ? "light" : "dark");
  $("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("hyp-theme", next);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupTheme();
  $("sql-form").addEventListener("submit", runSql);
  const rerender = () => latest && renderAnomalies(latest.live || {});
  $("anomaly-filter").addEventListener("input", rerender);
  $("anomaly-status").addEventListener("change", rerender);
  connect();
});
