// hyp-local console: the load generator run (routes/scenarios.py): start, stop, progress.
"use strict";

let scenarioTimer = null;

function showScenario(s) {
  const run = s.run;
  const state = $("scenario-state");
  $("scenario-form").dataset.running = String(!!s.running);
  if (!run) { state.textContent = "no run yet"; return; }
  $("scenario-progress").value = run.progress ?? 0;
  const what = `${run.scenario}${run.anomaly_kind ? " (" + run.anomaly_kind + ")" : ""}${run.rate ? " at " + run.rate + " events/s" : ""}`;
  const sent = run.published_since !== undefined && run.published_since !== null ? ` · ${fmt(run.published_since)} events published` : "";
  if (s.running) {
    state.textContent = `▶ ${what}: ${fmt(run.elapsed_s)} of ${run.duration_s} s${sent}`;
  } else {
    const report = run.report ? ` · sent ${fmt(run.report.sent)} at ${fmt(run.report.achieved_rate)} events/s` : "";
    const how = run.stopped ? "■ stopped" : run.exit_code === 0 ? "✓ finished" : `✗ ended (exit ${run.exit_code})`;
    state.textContent = `${how}: ${what}${report}${run.error ? " · " + run.error : ""}`;
  }
  state.title = run.argv || "";
}

async function pollScenario() {
  clearTimeout(scenarioTimer);
  try {
    const s = await act("GET", "/api/scenarios");
    if (!$("scenario-kind").options.length) fillSelect($("scenario-kind"), s.anomaly_kinds);
    showScenario(s);
    if (s.running) scenarioTimer = setTimeout(pollScenario, 1000);
  } catch (e) {
    $("scenario-state").textContent = `unreadable: ${e.message}`;
  }
}

async function startScenario(event) {
  event.preventDefault();
  await attempt($("scenario-form"), async () => {
    const scenario = $("scenario").value;
    const body = { scenario, rate: Number($("scenario-rate").value || 50), duration_s: Number($("scenario-duration").value || 120) };
    if (scenario === "anomaly") body.anomaly_kind = $("scenario-kind").value;
    const s = await act("POST", "/api/scenarios", body);
    showScenario(s);
    pollScenario();
    return `started: ${s.run.argv}`;
  });
}

async function stopScenario() {
  await attempt($("scenario-form"), async () => {
    const s = await act("POST", "/api/scenarios/stop");
    showScenario(s);
    return s.run ? "stopped" : "nothing was running";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("scenario-form").addEventListener("submit", startScenario);
  $("scenario-stop").addEventListener("click", stopScenario);
  $("scenario").addEventListener("change", () => {
    const v = $("scenario").value;
    $("scenario-kind").disabled = v !== "anomaly";
    $("scenario-rate").disabled = v === "drift" || v === "spike";
  });
  pollScenario();
});
