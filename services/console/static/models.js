// hyp-local console: model actions (routes/models.py): versions with their metrics side by side, promote,
// roll back, orchestrator runs started with parameters and followed step by step, the drift view.
"use strict";

let runTimer = null;
let versionsShown = null; // what the versions table shows: redrawn only when it changes (keeps focus)
let runsShown = null; // the same for the runs table
let followed = null; // the id of the run whose steps are shown

// called by app.js's renderModels after each snapshot: one column per metric, a promote button per version
function renderVersionActions(m) {
  const versions = m.versions || [];
  const key = JSON.stringify([versions, m.alias]);
  if (key === versionsShown) return;
  versionsShown = key;
  const all = [...new Set(versions.flatMap((v) => Object.keys(v.metrics || {})))];
  const first = ["precision", "recall", "f1", "pr_auc", "roc_auc"].filter((k) => all.includes(k));
  const keys = first.concat(all.filter((k) => !first.includes(k) && !k.includes(".")).sort()).slice(0, 8);
  const head = el("tr");
  ["version", "aliases", "created", ...keys, "action"].forEach((k) => head.appendChild(el("th", k, keys.includes(k) ? "num" : "")));
  $("versions").tHead.replaceChildren(head);
  $("versions").tBodies[0].replaceChildren(
    ...versions.map((v) => {
      const tr = el("tr");
      tr.dataset.version = v.version;
      tr.append(
        el("td", `v${v.version}`),
        el("td", (v.aliases || []).map((a) => "@" + a).join(" ") || "–"),
        el("td", v.created ? new Date(v.created * 1000).toLocaleString() : "–"),
        ...keys.map((k) => el("td", fmt(v.metrics?.[k], 3), "num"))
      );
      const td = el("td");
      if (!(v.aliases || []).includes(m.alias || "champion")) {
        const b = el("button", "make champion");
        b.type = "button";
        b.addEventListener("click", () => promote(v.version));
        td.appendChild(b);
      } else td.textContent = "champion";
      tr.appendChild(td);
      return tr;
    })
  );
}

// called by app.js's renderOrchestrator after each snapshot: any run (a sensor's too) can be followed step by step
function renderRuns(runs) {
  const rows = runs.map((r) => [
    r.id, r.trigger?.kind ?? "–", r.status ?? "–", r.decision ?? "–",
    r.promoted_version ? `v${r.promoted_version}` : "–", r.started_at ?? "–",
  ]);
  const key = JSON.stringify(rows);
  if (key === runsShown) return;
  runsShown = key;
  $("runs").tBodies[0].replaceChildren(
    ...rows.map((cells, i) => {
      const tr = el("tr");
      tr.dataset.run = runs[i].id;
      tr.dataset.trigger = cells[1];
      tr.dataset.status = cells[2];
      cells.forEach((c) => tr.appendChild(el("td", String(c))));
      const b = el("button", followed === runs[i].id ? "following" : "follow");
      b.type = "button";
      b.setAttribute("aria-label", `follow run ${runs[i].id}`);
      b.addEventListener("click", () => follow(runs[i].id));
      const td = el("td");
      td.appendChild(b);
      tr.appendChild(td);
      return tr;
    })
  );
}

async function promote(version) {
  await attempt($("models-outcome"), async () => {
    const r = await act("POST", "/api/models/champion", { version });
    return `champion v${r.before ?? "–"} → v${r.champion}`;
  });
}

async function rollback() {
  await attempt($("models-outcome"), async () => {
    const r = await act("POST", "/api/models/rollback");
    return `rolled back: champion v${r.before} → v${r.champion}`;
  });
}

function runParams() {
  const p = { promote: $("run-promote").checked, reason: $("run-reason").value.trim() || null };
  const cands = $("run-candidates").value.split(",").map((c) => c.trim()).filter(Boolean);
  if (cands.length) p.candidates = cands;
  if ($("run-window").value) p.window_minutes = Number($("run-window").value);
  if ($("run-rows").value) p.max_rows = Number($("run-rows").value);
  if ($("run-holdout").value) p.holdout_fraction = Number($("run-holdout").value);
  return p;
}

function showRun(run) {
  $("run-follow").hidden = false;
  $("run-id").textContent = run.id;
  $("run-status").textContent = `${run.status}${run.decision ? " · " + run.decision : ""}${run.promoted_version ? " · promoted v" + run.promoted_version : ""}`;
  $("run-follow").dataset.status = run.status;
  $("run-steps").replaceChildren(
    ...(run.steps || []).map((s) => {
      const mark = s.status === "succeeded" ? "✓" : s.status === "failed" ? "✗" : "…";
      const li = el("li", `${mark} ${s.name}: ${s.status}${s.seconds !== undefined ? ` (${s.seconds} s)` : ""}${s.errors ? " · " + s.errors[s.errors.length - 1] : ""}`, s.status);
      li.dataset.step = s.name;
      return li;
    })
  );
}

function follow(id) {
  clearTimeout(runTimer);
  followed = id;
  runsShown = null; // the next snapshot marks the followed row
  const tick = async () => {
    try {
      const run = await act("GET", `/api/orchestrator/runs/${encodeURIComponent(id)}`);
      showRun(run);
      if (run.status === "running") runTimer = setTimeout(tick, 1000);
    } catch (e) {
      $("run-status").textContent = `unreadable: ${e.message}`;
    }
  };
  tick();
}

async function startRun(event) {
  event.preventDefault();
  await attempt($("run-form"), async () => {
    const r = await act("POST", "/api/orchestrator/runs", runParams());
    showRun(r.run);
    follow(r.run.id);
    return r.created ? `run ${r.run.id} started` : `joined the run in progress ${r.run.id}`;
  });
}

function driftChart(feature, d, stats, drifted) {
  const ns = "http://www.w3.org/2000/svg";
  const fig = el("figure");
  fig.dataset.feature = feature;
  const s = stats || {};
  const flag = drifted ? "✗ drifted" : stats ? "✓ stable" : "";
  fig.appendChild(el("figcaption", `${feature}  ${flag}  PSI ${fmt(s.psi, 3)} · KS ${fmt(s.ks, 3)} · p ${s.ks_pvalue === undefined ? "–" : Number(s.ks_pvalue).toExponential(1)}`));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 400 140");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${feature}: reference (blue) against recent (orange)`);
  const norm = (a) => { const t = a.reduce((x, y) => x + y, 0) || 1; return a.map((v) => v / t); };
  const ref = norm(d.reference || []), rec = norm(d.recent || []);
  const max = Math.max(0.01, ...ref, ...rec);
  const n = ref.length, bw = 396 / Math.max(n, 1);
  const bar = (i, v, cls, off) => {
    const r = document.createElementNS(ns, "rect");
    const h = (110 * v) / max;
    r.setAttribute("x", 2 + i * bw + off); r.setAttribute("width", Math.max(bw / 2 - 1, 1));
    r.setAttribute("y", 115 - h); r.setAttribute("height", h); r.setAttribute("class", cls);
    return r;
  };
  ref.forEach((v, i) => svg.appendChild(bar(i, v, "ref", 0)));
  rec.forEach((v, i) => svg.appendChild(bar(i, v, "rec", bw / 2)));
  if (n) {
    const t0 = document.createElementNS(ns, "text"); t0.setAttribute("x", 2); t0.setAttribute("y", 134); t0.setAttribute("class", "axis"); t0.textContent = fmt(d.edges[0], 2);
    const t1 = document.createElementNS(ns, "text"); t1.setAttribute("x", 398); t1.setAttribute("y", 134); t1.setAttribute("class", "axis"); t1.setAttribute("text-anchor", "end"); t1.textContent = fmt(d.edges[n], 2) + (d.log ? " (log bins)" : "");
    svg.append(t0, t1);
  }
  fig.appendChild(svg);
  return fig;
}

async function loadDrift() {
  await attempt($("drift-outcome"), async () => {
    const r = await act("GET", "/api/models/drift");
    const st = r.statistics || {};
    $("drift-reference").textContent = `reference: ${r.reference}; recent: newest ${r.rows?.recent ?? 0} purchases (blue: reference, orange: recent)`;
    $("drift").replaceChildren(...Object.entries(r.features || {}).map(([f, d]) => driftChart(f, d, st.features?.[f], (st.drifted || []).includes(f))));
    if (r.orchestrator) return `distributions only: ${r.orchestrator}`;
    return st.features ? `orchestrator's last reading: ${(st.drifted || []).length ? "drift in " + st.drifted.join(", ") : "no drift"}` : `orchestrator: ${st.status || "no drift reading yet"}`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("rollback").addEventListener("click", rollback);
  $("run-form").addEventListener("submit", startRun);
  $("load-drift").addEventListener("click", loadDrift);
});
