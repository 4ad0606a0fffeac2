// hyp-local console: the warehouse through the BigQuery API (routes/warehouse.py): tables, schemas, row
// counts, a preview, histograms of a numeric column, recent jobs.
"use strict";

const NUMERIC = new Set(["INTEGER", "INT64", "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC"]);

function numericColumns(fields, prefix = "") {
  return fields.flatMap((f) => {
    if ((f.type === "RECORD" || f.type === "STRUCT") && f.mode !== "REPEATED") return numericColumns(f.fields || [], prefix + f.name + ".");
    return NUMERIC.has(f.type) && f.mode !== "REPEATED" ? [prefix + f.name] : [];
  });
}

function schemaList(fields) {
  const ul = el("ul");
  for (const f of fields) {
    const li = el("li", `${f.name}  ${f.type}${f.mode && f.mode !== "NULLABLE" ? " " + f.mode : ""}`);
    if (f.fields) li.appendChild(schemaList(f.fields));
    ul.appendChild(li);
  }
  return ul;
}

async function loadTables() {
  await attempt($("tables"), async () => {
    const r = await act("GET", "/api/warehouse/tables");
    const body = $("table-list").tBodies[0];
    body.replaceChildren(
      ...r.tables.map((t) => {
        const tr = el("tr");
        const name = `${t.dataset}.${t.table}`;
        tr.dataset.table = name;
        const view = el("button", "open");
        view.setAttribute("aria-label", `schema and preview of ${name}`);
        view.type = "button";
        view.addEventListener("click", () => showTable(t));
        const td = el("td");
        td.appendChild(view);
        tr.append(el("td", name), el("td", fmt(t.rows), "num"), el("td", t.type + (t.partitioning ? ` (by ${t.partitioning})` : "")), td);
        return tr;
      })
    );
    const choice = $("hist-table");
    fillSelect(choice, r.tables.map((t) => `${t.dataset}.${t.table}`));
    if (!choice.dataset.touched && r.tables.some((t) => t.dataset === "ecommerce_sink" && t.table === "cloud_run")) choice.value = "ecommerce_sink.cloud_run";
    warehouseTables = r.tables;
    columnChoices();
    return `${r.tables.length} table(s)`;
  });
  loadJobs();
}

let warehouseTables = [];

function columnChoices() {
  const [dataset, table] = $("hist-table").value.split(".");
  const t = warehouseTables.find((x) => x.dataset === dataset && x.table === table);
  $("numeric-columns").replaceChildren(...numericColumns(t ? t.schema : []).map((c) => { const o = el("option"); o.value = c; return o; }));
}

async function showTable(t) {
  const name = `${t.dataset}.${t.table}`;
  $("schema-title").textContent = `Schema of ${name}`;
  $("schema").replaceChildren(...schemaList(t.schema).childNodes);
  await attempt($("tables"), async () => {
    const r = await act("GET", `/api/warehouse/tables/${encodeURIComponent(t.dataset)}/${encodeURIComponent(t.table)}/preview`);
    $("preview").hidden = false;
    $("preview-title").textContent = `${name}: first ${r.rows.length} of ${fmt(r.total_rows)} rows`;
    const head = el("tr");
    r.columns.forEach((c) => head.appendChild(el("th", c)));
    $("preview-table").tHead.replaceChildren(head);
    fillBody($("preview-table"), r.rows.map((row) => row.map((v) => ({ text: v === null ? "NULL" : String(v), cls: "wrap" }))));
    return `${name}: ${r.rows.length} row(s) shown`;
  });
}

function drawHistogram(h) {
  const svg = $("histogram");
  const ns = "http://www.w3.org/2000/svg";
  const W = 900, H = 220, L = 60, B = 36, T = 8;
  const max = Math.max(1, ...h.counts);
  const n = h.counts.length;
  const bw = (W - L - 4) / Math.max(n, 1);
  const parts = [];
  const text = (x, y, s, anchor = "start") => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("class", "axis"); t.setAttribute("text-anchor", anchor);
    t.textContent = s;
    return t;
  };
  h.counts.forEach((c, i) => {
    const r = document.createElementNS(ns, "rect");
    const hgt = ((H - T - B) * c) / max;
    r.setAttribute("x", L + i * bw + 1); r.setAttribute("width", Math.max(bw - 2, 1));
    r.setAttribute("y", H - B - hgt); r.setAttribute("height", hgt); r.setAttribute("class", "bar");
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${fmt(h.edges[i], 2)} – ${fmt(h.edges[i + 1], 2)}: ${c}`;
    r.appendChild(tip);
    parts.push(r);
  });
  parts.push(text(2, T + 12, fmt(max)), text(2, H - B, "0"));
  if (n) {
    parts.push(text(L, H - B + 16, fmt(h.edges[0], 2)), text(W - 4, H - B + 16, fmt(h.edges[n], 2), "end"));
    parts.push(text((L + W) / 2, H - B + 16, fmt(h.edges[Math.floor(n / 2)], 2), "middle"));
  }
  parts.push(text(L, H - 2, `${h.column}${h.log ? " (log scale)" : ""}: ${fmt(h.n)} values${h.skipped ? `, ${fmt(h.skipped)} not positive (left out)` : ""}`));
  svg.replaceChildren(...parts);
  svg.dataset.bins = String(n);
}

async function histogram(event) {
  event.preventDefault();
  await attempt($("histogram-form"), async () => {
    const [dataset, table] = $("hist-table").value.split(".");
    const body = { dataset, table, column: $("hist-column").value.trim(), bins: Number($("hist-bins").value || 30), log: $("hist-log").checked };
    const h = await act("POST", "/api/warehouse/histogram", body);
    drawHistogram(h);
    return h.n ? `${fmt(h.n)} values in ${h.counts.length} bins` : "no values to draw";
  });
  loadJobs(); // its queries are jobs too: the list shows them
}

async function loadJobs() {
  try {
    const r = await act("GET", "/api/warehouse/jobs");
    $("jobs-state").textContent = r.unavailable || `${r.jobs.length} recent job(s)`;
    fillBody($("jobs-table"), r.jobs.map((j) => [
      j.created ? new Date(j.created).toLocaleTimeString() : "–", j.state || "–", j.type || "–", num(j.bytes),
      { text: j.error ? `✗ ${j.error}` : j.query || "–", cls: "wrap" },
    ]));
  } catch (e) {
    $("jobs-state").textContent = `jobs unavailable: ${e.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("load-tables").addEventListener("click", loadTables);
  $("histogram-form").addEventListener("submit", histogram);
  $("hist-table").addEventListener("change", (e) => { e.target.dataset.touched = "1"; columnChoices(); });
  loadTables();
});
