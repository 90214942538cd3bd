// hearsay live view: polls /api/view, listens on /api/events (SSE).
// Plain JavaScript, no dependencies; nothing is fetched from the network
// beyond this node.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const withToken = (path) => token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;
const $ = (sel) => document.querySelector(sel);
const short = (id) => id ? id.slice(0, 8) : "";
const SLOTS = 16384, SIDE = 128;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function ago(ms) {
  if (ms == null || ms < 0) return "never";
  if (ms < 1000) return ms + " ms ago";
  return (ms / 1000).toFixed(1) + " s ago";
}

// Owner colours: masters in ID order, spread around the hue circle.
const colourOf = new Map();
function colours(view) {
  colourOf.clear();
  const masters = view.nodes.filter((n) => n.slot_count > 0 || n.role === "master").map((n) => n.id).sort();
  masters.forEach((id, i) => colourOf.set(id, `hsl(${Math.round((i * 360) / Math.max(masters.length, 1) + 200) % 360} 65% 55%)`));
}

let last = null;

function renderSummary(v) {
  const state = el("b", { class: v.cluster_state === "ok" ? "ok" : "bad", text: "cluster_state:" + v.cluster_state });
  const s = $("#summary");
  s.replaceChildren(state, ` · node ${short(v.id)} (${v.role}) · current epoch ${v.current_epoch} · config epoch ${v.config_epoch} · ${v.nodes.length} nodes · ${v.size} serving masters · ${v.keys} keys`);
}

function flagSpans(n) {
  const f = el("span");
  for (const name of n.flags) {
    if (name === "noflags" || name === "myself" || name === "master" || name === "slave") continue;
    f.append(el("span", { class: "flag " + name.replace("?", ""), text: name }));
  }
  return f;
}

function renderMembers(v) {
  const rows = v.nodes.map((n) => {
    const tr = el("tr", { "data-id": n.id, class: n.myself ? "myself" : "" });
    const sw = el("span", { class: "swatch" });
    sw.style.background = colourOf.get(n.id) || "transparent";
    const link = n.myself ? el("span", { class: "muted", text: "self" }) : el("span", { class: n.connected ? "ok" : "bad", text: n.connected ? "connected" : "down" });
    let hb = el("span", { class: "muted", text: "—" });
    if (n.heartbeat) hb = el("span", { class: n.heartbeat.answering ? "ok" : "bad", title: "the path of the peer that answered its last PONG",
      text: (n.heartbeat.answering ? "answering" : "silent") + (n.heartbeat.path ? " (" + n.heartbeat.path + ")" : "") });
    const lag = n.repl_lag == null ? "" : String(n.repl_lag);
    tr.append(
      el("td", { class: "mono", title: n.id }, sw, short(n.id) + (n.myself ? " (myself)" : "")),
      el("td", { class: "mono", text: n.addr }),
      el("td", { class: "role", text: n.role }),
      el("td", { class: "mono", title: n.master || "", text: short(n.master) }),
      el("td", { class: "num", text: String(n.config_epoch) }),
      el("td", { class: "flags" }, flagSpans(n)),
      el("td", {}, link),
      el("td", { text: n.ping_sent_ago_ms ? ago(n.ping_sent_ago_ms) : "" }),
      el("td", { text: n.pong_recv_ago_ms ? ago(n.pong_recv_ago_ms) : "" }),
      el("td", {}, hb),
      el("td", { class: "num", text: String(n.repl_offset) }),
      el("td", { class: "num " + (n.repl_lag > 0 ? "warn" : ""), text: lag }),
      el("td", { class: "mono", text: n.slots ? `${n.slots} (${n.slot_count})` : "" }),
    );
    return tr;
  });
  $("#members tbody").replaceChildren(...rows);
}

function renderSlots(v) {
  const c = $("#slotmap");
  const ctx = c.getContext("2d");
  const cell = c.width / SIDE;
  ctx.fillStyle = "#2a3038";
  ctx.fillRect(0, 0, c.width, c.height);
  let assigned = 0;
  for (const r of v.slots) {
    ctx.fillStyle = colourOf.get(v.nodes[r.node].id) || "#888";
    for (let s = r.start; s <= r.end; s++) {
      ctx.fillRect((s % SIDE) * cell, Math.floor(s / SIDE) * cell, cell, cell);
    }
    assigned += r.end - r.start + 1;
  }
  const mark = (list, colour) => {
    ctx.fillStyle = colour;
    for (const m of list) {
      const x = (m.slot % SIDE) * cell, y = Math.floor(m.slot / SIDE) * cell;
      ctx.fillRect(x + cell / 4, y + cell / 4, cell / 2, cell / 2);
    }
  };
  mark(v.migrating, "#ff4040");
  mark(v.importing, "#ffffff");
  c.dataset.assigned = String(assigned);
  c.dataset.rendered = "1";
  $("#slotinfo").textContent = `${assigned} of ${SLOTS} assigned · ${v.migrating.length} migrating (red) · ${v.importing.length} importing (white)`;
  const legend = v.nodes.filter((n) => colourOf.has(n.id)).map((n) => {
    const sw = el("span", { class: "swatch" });
    sw.style.background = colourOf.get(n.id);
    return el("li", {}, sw, `${short(n.id)} ${n.addr.split("@")[0]} · ${n.slot_count} slots`);
  });
  $("#legend").replaceChildren(...legend);
}

function ownerOf(v, slot) {
  for (const r of v.slots) if (slot >= r.start && slot <= r.end) return v.nodes[r.node];
  return null;
}

$("#slotmap").addEventListener("mousemove", (e) => {
  if (!last) return;
  const c = e.currentTarget, rect = c.getBoundingClientRect();
  const x = Math.floor(((e.clientX - rect.left) / rect.width) * SIDE), y = Math.floor(((e.clientY - rect.top) / rect.height) * SIDE);
  const slot = y * SIDE + x;
  if (slot < 0 || slot >= SLOTS) return;
  const o = ownerOf(last, slot);
  let text = `slot ${slot}: ` + (o ? `${short(o.id)} ${o.addr.split("@")[0]}` : "unassigned");
  const mig = last.migrating.find((m) => m.slot === slot), imp = last.importing.find((m) => m.slot === slot);
  if (mig) text += ` · migrating to ${short(mig.peer)}`;
  if (imp) text += ` · importing from ${short(imp.peer)}`;
  $("#slothover").textContent = text;
});

function renderHeartbeats(v) {
  const hb = v.heartbeat;
  $("#hbmode").textContent = `transport ${hb.mode}` + (hb.ping_interval_ms ? ` · ping every ${hb.ping_interval_ms} ms` : "") + ` · ${hb.answering}/${hb.peers} answering`;
  const rows = v.nodes.filter((n) => n.heartbeat).map((n) => {
    const h = n.heartbeat;
    return el("tr", { "data-id": n.id, "data-path": h.path },
      el("td", { class: "mono", title: n.id, text: short(n.id) }),
      el("td", { class: "mono", text: n.addr.split("@")[0] }),
      el("td", { class: "num", text: h.pongs ? (h.rtt_us < 1000 ? h.rtt_us.toFixed(1) + " µs" : (h.rtt_us / 1000).toFixed(2) + " ms") : "—" }),
      el("td", { class: "num", text: String(h.pongs) }),
      el("td", { text: ago(h.last_pong_ago_ms) }),
      el("td", { class: h.answering ? "ok" : "bad", text: h.answering ? "yes" : "no" }),
      el("td", { class: h.path === "xdp" ? "ok" : "", title: h.path === "xdp" ? "answered by the peer's XDP program, in its kernel" : h.path === "udp" ? "answered by a userspace responder on the peer" : "", text: h.path || "—" }),
    );
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "7", class: "muted", text: hb.mode === "off" ? "heartbeat transport off: liveness rides on the bus pings (see the membership table)" : "no heartbeat peers yet" })));
  $("#heartbeats tbody").replaceChildren(...rows);
  $("#hbcounters").textContent = `PONGs received: ${hb.pongs_received_kernel} by XDP, ${hb.pongs_received_user} by userspace (UDP) · PINGs answered: ${hb.pings_answered_kernel} by XDP, ${hb.pings_answered_user} by userspace · bad packets ${hb.bad_packets}`;
}

function render(v) {
  last = v;
  colours(v);
  renderSummary(v);
  renderMembers(v);
  renderSlots(v);
  renderHeartbeats(v);
  $("#evstats").textContent = `${v.events.clients} stream(s) · ${v.events.published} published · ${v.events.sent} messages sent · ${v.events.dropped} dropped for slow clients`;
}

async function poll() {
  try {
    const r = await fetch(withToken("api/view"), { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    render(await r.json());
  } catch (err) {
    $("#summary").textContent = "cannot read the view: " + err.message;
  }
  setTimeout(poll, 1000);
}

const MAX_EVENTS = 500;
let received = 0;
function addEvent(ev, dropped) {
  const list = $("#events");
  const t = new Date(ev.t).toLocaleTimeString(undefined, { hour12: false }) + "." + String(ev.t % 1000).padStart(3, "0");
  const who = ev.node ? " " + short(ev.node) : "";
  const li = el("li", { class: "k-" + ev.kind },
    el("span", { class: "muted", text: t + " " }),
    el("span", { class: "kind", text: ev.kind }),
    who, ev.text ? " — " + ev.text : "", ev.count > 1 ? ` ×${ev.count}` : "");
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  received++;
  list.dataset.received = String(received);
}

function connect() {
  const es = new EventSource(withToken("api/events"));
  const pill = $("#stream");
  es.addEventListener("hello", () => { pill.textContent = "events: live"; pill.className = "pill on"; });
  es.addEventListener("batch", (m) => {
    const b = JSON.parse(m.data);
    for (const ev of b.events) addEvent(ev);
    if (b.dropped) addEvent({ t: Date.now(), kind: "dropped", text: `${b.dropped} events dropped: this page fell behind` });
  });
  es.onerror = () => { pill.textContent = "events: reconnecting"; pill.className = "pill off"; };
}

poll();
connect();
