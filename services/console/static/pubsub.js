// hyp-local console: Pub/Sub actions (routes/pubsub.py, through the emulator's REST API).
"use strict";

const pubsubState = { templates: {}, peekSelected: () => [], deadSelected: () => [], peekSub: null, deadSub: null };

async function loadResources() {
  const r = await act("GET", "/api/pubsub/resources");
  document.querySelectorAll(".topic-choice").forEach((s) => fillSelect(s, r.topics, { optional: s.classList.contains("optional") }));
  document.querySelectorAll(".snapshot-choice").forEach((s) => fillSelect(s, r.snapshots || [], { optional: true }));
  const subs = r.subscriptions.map((s) => s.name);
  document.querySelectorAll(".subscription-choice").forEach((s) => fillSelect(s, subs));
  const dead = $("dead-subscription");
  if (!dead.dataset.touched && subs.includes("hyp_subscription_deadletter")) dead.value = "hyp_subscription_deadletter";
  const both = r.topics.map((t) => "topic " + t).concat(subs.map((s) => "subscription " + s));
  fillSelect($("delete-choice"), both);
  return r;
}

async function loadTemplates() {
  pubsubState.templates = await act("GET", "/api/pubsub/templates");
  fillSelect($("publish-template"), Object.keys(pubsubState.templates), { optional: true });
  $("publish-template").options[0].textContent = "(free JSON)";
}

function useTemplate() {
  const t = pubsubState.templates[$("publish-template").value];
  if (!t) return;
  $("publish-data").value = t.data;
  $("publish-attributes").value = JSON.stringify(t.attributes, null, 1);
}

function parseAttributes() {
  const text = $("publish-attributes").value.trim() || "{}";
  let parsed;
  try { parsed = JSON.parse(text); } catch (e) { throw new Error(`attributes: not JSON (${e.message})`); }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("attributes: expected a JSON object");
  for (const [k, v] of Object.entries(parsed)) if (typeof v !== "string") throw new Error(`attributes: ${k} must be a string`);
  return parsed;
}

async function publish(event) {
  event.preventDefault();
  await attempt($("publish-form"), async () => {
    const body = { topic: $("publish-topic").value, data: $("publish-data").value, attributes: parseAttributes(), json_data: $("publish-json").checked };
    const r = await act("POST", "/api/pubsub/publish", body);
    return `published ${r.message_ids.join(", ")} to ${body.topic}`;
  });
}

const short = (v, n = 160) => (v.length > n ? v.slice(0, n) + "…" : v);
const attrs = (a) => Object.entries(a || {}).map(([k, v]) => `${k}=${v}`).join(" ");

async function peek(event) {
  event.preventDefault();
  await attempt($("peek-form"), async () => {
    const sub = $("peek-subscription").value;
    const hold = Number($("peek-hold").value || 0);
    const r = await act("POST", "/api/pubsub/peek", { subscription: sub, max_messages: Number($("peek-max").value || 10), hold_s: hold });
    pubsubState.peekSub = sub;
    $("peeked").hidden = false;
    $("peeked-from").textContent = sub;
    $("peeked-hold").textContent = r.held_until ? `held until ${new Date(r.held_until * 1000).toLocaleTimeString()}` : "(handed back: ack/nack need a hold)";
    $("ack-selected").disabled = $("nack-selected").disabled = !r.held_until;
    pubsubState.peekSelected = checkTable($("peek-table"), r.messages, (m) => [
      m.publish_time || "–", m.message_id || "–", { text: attrs(m.attributes), cls: "wrap" }, { text: short(m.data), cls: "wrap", title: m.data }, m.delivery_attempt ?? "–",
    ]);
    return `${r.messages.length} message(s), none acknowledged`;
  });
}

async function ackOrNack(verb) {
  await attempt($("peeked"), async () => {
    const chosen = pubsubState.peekSelected();
    if (!chosen.length) throw new Error("tick the messages first");
    const r = await act("POST", `/api/pubsub/${verb}`, { subscription: pubsubState.peekSub, ack_ids: chosen.map((m) => m.ack_id) });
    return `${verb === "ack" ? r.acked + " acked" : r.nacked + " nacked"} on ${pubsubState.peekSub}`;
  });
}

async function createTopic() {
  await attempt($("resource-form"), async () => {
    const name = $("new-topic").value.trim();
    await act("PUT", "/api/pubsub/topics", { name });
    await loadResources();
    return `topic ${name} created`;
  });
}

async function createSubscription() {
  await attempt($("resource-form"), async () => {
    const body = { name: $("new-subscription").value.trim(), topic: $("new-subscription-topic").value, filter: $("new-subscription-filter").value.trim() };
    if ($("new-subscription-dlq").value) body.dead_letter_topic = $("new-subscription-dlq").value;
    await act("PUT", "/api/pubsub/subscriptions", body);
    await loadResources();
    return `subscription ${body.name} created on ${body.topic}`;
  });
}

async function deleteResource() {
  await attempt($("resource-form"), async () => {
    const [kind, name] = $("delete-choice").value.split(" ");
    if (!name) throw new Error("choose what to delete");
    if (!window.confirm(`Delete ${kind} ${name}?`)) return "not deleted";
    await act("DELETE", `/api/pubsub/${kind === "topic" ? "topics" : "subscriptions"}/${encodeURIComponent(name)}`);
    await loadResources();
    return `${kind} ${name} deleted`;
  });
}

async function seek(event) {
  event.preventDefault();
  await attempt($("seek-form"), async () => {
    const local = $("seek-time").value, snapshot = $("seek-snapshot").value;
    if (!local === !snapshot) throw new Error("choose a time or a snapshot (one of them)");
    const body = { subscription: $("seek-subscription").value };
    if (snapshot) body.snapshot = snapshot; else body.time = new Date(local).toISOString();
    const r = await act("POST", "/api/pubsub/seek", body);
    return `${body.subscription} sought to ${r.time || "snapshot " + r.snapshot}`;
  });
}

async function takeSnapshot() {
  await attempt($("seek-form"), async () => {
    const body = { name: $("new-snapshot").value.trim(), subscription: $("seek-subscription").value };
    await act("PUT", "/api/pubsub/snapshots", body);
    await loadResources();
    return `snapshot ${body.name} of ${body.subscription} taken`;
  });
}

async function loadDead() {
  await attempt($("dead-letters"), async () => {
    const sub = $("dead-subscription").value;
    const r = await act("GET", `/api/pubsub/dead-letters?subscription=${encodeURIComponent(sub)}&hold_s=120`);
    pubsubState.deadSub = sub;
    pubsubState.deadSelected = checkTable($("dead-table"), r.messages, (m) => [
      m.publish_time || "–", m.reason || "(no dead-letter attributes)", { text: attrs(m.attributes), cls: "wrap" }, { text: short(m.data), cls: "wrap", title: m.data },
    ]);
    return `${r.messages.length} dead-lettered message(s), held 120 s for republishing`;
  });
}

async function republish() {
  await attempt($("dead-letters"), async () => {
    const chosen = pubsubState.deadSelected();
    if (!chosen.length) throw new Error("load and tick the messages first");
    const messages = chosen.map((m) => ({ ack_id: m.ack_id, data_b64: m.data_b64, attributes: m.attributes }));
    const r = await act("POST", "/api/pubsub/republish", { subscription: pubsubState.deadSub, messages });
    return `${r.republished} republished to ${r.to.join(", ")}`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("publish-form").addEventListener("submit", publish);
  $("publish-template").addEventListener("change", useTemplate);
  $("peek-form").addEventListener("submit", peek);
  $("ack-selected").addEventListener("click", () => ackOrNack("ack"));
  $("nack-selected").addEventListener("click", () => ackOrNack("nack"));
  $("create-topic").addEventListener("click", createTopic);
  $("create-subscription").addEventListener("click", createSubscription);
  $("delete-resource").addEventListener("click", deleteResource);
  $("seek-form").addEventListener("submit", seek);
  $("load-dead").addEventListener("click", loadDead);
  $("take-snapshot").addEventListener("click", takeSnapshot);
  $("republish-selected").addEventListener("click", republish);
  $("dead-subscription").addEventListener("change", (e) => { e.target.dataset.touched = "1"; });
  $("resource-form").addEventListener("submit", (e) => e.preventDefault());
  attempt($("pubsub-actions").querySelector("#publish-form"), async () => {
    await Promise.all([loadResources(), loadTemplates()]);
    return "ready";
  });
});
