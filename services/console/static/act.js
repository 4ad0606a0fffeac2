// hyp-local console: what every action shares. A state-changing request is JSON sent to the console's
// own origin (the server refuses anything else: services/console/guard.py); its outcome, or the reason it
// was refused, is written next to the control that made it (role=status), never as HTML.
"use strict";

async function act(method, url, body) {
  const init = { method, headers: {} };
  if (body === undefined && method === "POST") body = {}; // the server takes only JSON posts
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, init);
  } catch (e) {
    throw new Error(`console unreachable: ${e.message}`);
  }
  let answer = {};
  try { answer = await r.json(); } catch (e) { answer = {}; }
  if (!r.ok) throw new Error(answer.error || `HTTP ${r.status}`);
  if (answer.unavailable) throw new Error(answer.unavailable); // a view of a service that is down
  return answer;
}

function outcome(where, ok, text) {
  const p = where.classList && where.classList.contains("outcome") ? where : where.querySelector(".outcome");
  p.textContent = (ok ? "✓ " : "✗ ") + text;
  p.className = "outcome " + (ok ? "ok" : "failed");
  p.dataset.ok = String(ok);
}

// run fn(); show its text as the outcome in `where`, or the error's reason
async function attempt(where, fn) {
  const p = where.querySelector ? where.querySelector(".outcome") || where : where;
  p.textContent = "…";
  p.className = "outcome";
  delete p.dataset.ok;
  try {
    outcome(p, true, await fn());
  } catch (e) {
    outcome(p, false, e.message);
  }
}

function fillSelect(select, values, { optional = false, keep = true } = {}) {
  const before = select.value;
  const opts = (optional ? [""] : []).concat(values).map((v) => {
    const o = el("option", v === "" ? "(none)" : v);
    o.value = v;
    return o;
  });
  select.replaceChildren(...opts);
  if (keep && values.includes(before)) select.value = before;
}

// a table of rows with a checkbox first: returns the items whose boxes are ticked
function checkTable(table, items, cells) {
  const body = table.tBodies[0];
  body.replaceChildren(
    ...items.map((item, i) => {
      const tr = el("tr");
      const box = el("input");
      box.type = "checkbox";
      box.dataset.index = String(i);
      box.setAttribute("aria-label", `select row ${i + 1}`);
      const td = el("td");
      td.appendChild(box);
      tr.appendChild(td);
      for (const c of cells(item)) {
        const cell = el("td", c.text ?? c, c.cls);
        if (c.title) cell.title = c.title;
        tr.appendChild(cell);
      }
      return tr;
    })
  );
  return () => [...body.querySelectorAll("input[type=checkbox]:checked")].map((b) => items[Number(b.dataset.index)]);
}
