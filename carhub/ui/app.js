// CarHub head-unit dashboard. Vanilla JS, no build step, no network beyond this car's API.
//
// Theory of operation: the WebSocket at /api/events is the source of truth. On connect it
// sends one snapshot of each type (status, pairing, phones, media, notifications) and then the
// full new value on every change, so each handler simply replaces its slice of `state` and
// re-renders that slice. REST is used for actions, for the contacts list (paged, searched
// on the server) and once at start-up in case the socket is slow. Two timers animate
// without server traffic: the pairing countdowns and the now-playing position, which is
// extrapolated from position_ms + elapsed × rate, as the protocol intends.
"use strict";

const PAGE = 50; // contacts per request: one screenful and a half; "Load more" fetches the next
const SEARCH_DEBOUNCE_MS = 250;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const TOAST_MS = 4000;
const CONFIRM_MS = 4000; // an armed Unpair button disarms itself after this
const PROFILE_TITLES = { carhub: "CarHub app", ams: "Apple Media Service", ancs: "Apple Notification Center Service",
  pbap: "Phone Book Access (Bluetooth Classic)" };
const SYNC_STAGES = { contacts: "Downloading contacts", photos: "Downloading photos", done: "Up to date",
  skipped: "Unchanged since the last download", failed: "Download stopped",
  refused: "Kept the car's contacts: the phone shared too few" };

const state = {
  status: null,
  qr: null, // {uri, expires_at} of the pairing QR code this dashboard asked for
  requests: [],
  phones: [],
  selectedPhoneId: null,
  media: null,
  notifications: [], // Apple-profile phones' (ANCS), newest first as the car sorts them
  sync: {}, // phone id -> the latest `sync` event of a Classic (PBAP) pull
  calls: { phoneId: null, items: [], seq: 0 }, // the selected Classic phone's recent calls
  mediaAt: 0, // performance.now() when `media` arrived: the origin for extrapolation
  contacts: { items: [], total: 0, q: "", loading: false, seq: 0 },
  wsSeen: new Set(), // slices already delivered by the socket: stale REST answers must not win
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- API + toast

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new Error("The car is not reachable");
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const detail = data && data.detail !== undefined ? data.detail : `${res.status} ${res.statusText}`;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

// Run an action; on failure show the server's `detail` in a toast.
async function act(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    toast(err.message);
    return undefined;
  }
}

let toastTimer = 0;
function toast(message, kind = "error") {
  const el = $("toast");
  el.textContent = message;
  el.className = `toast ${kind === "info" ? "info" : ""}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
}

// ---------------------------------------------------------------- formatting

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

function fmtTime(ms) {
  const total = Math.max(0, Math.floor((ms || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function fmtCode(code) {
  const digits = String(code ?? "").replace(/\D/g, "");
  return digits.length === 6 ? `${digits.slice(0, 3)} ${digits.slice(3)}` : String(code ?? "");
}

function fmtFingerprint(fp, groups) {
  const clean = String(fp ?? "").replace(/[^0-9a-zA-Z]/g, "").toUpperCase();
  const parts = clean.match(/.{1,4}/g) || [];
  return (groups ? parts.slice(0, groups) : parts).join(" ") + (groups && parts.length > groups ? " …" : "");
}

function fmtAgo(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "never synced";
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 45) return "synced just now";
  if (s < 3600) return `synced ${Math.round(s / 60)} min ago`;
  if (s < 86400) return `synced ${Math.round(s / 3600)} h ago`;
  if (s < 2 * 86400) return "synced yesterday";
  return `synced ${new Date(unixSeconds * 1000).toLocaleDateString()}`;
}

function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  const first = words[0] ? [...words[0]][0] : "?";
  const last = words.length > 1 ? [...words[words.length - 1]][0] : "";
  return (first + last).toUpperCase();
}

function avatarColour(key) {
  let h = 0;
  for (const ch of String(key)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 45% 38%)`;
}

// ---------------------------------------------------------------- status / header

function renderStatus() {
  const s = state.status;
  if (!s) return;
  $("car-name").textContent = s.name || "CarHub";
  $("car-model").textContent = [s.model, s.protocol_version ? `protocol v${s.protocol_version}` : null]
    .filter(Boolean).join(" · ");
  document.title = `${s.name || "CarHub"} · CarHub`;
  setBadge("badge-lan", s.lan, s.lan && s.lan.endpoint);
  setBadge("badge-ble", s.ble, s.ble && s.ble.address);
  const open = !!s.pairing_open;
  const ps = $("pairing-state");
  ps.dataset.state = open ? "open" : "closed";
  ps.querySelector("use").setAttribute("href", open ? "#i-unlock" : "#i-lock");
  ps.querySelector(".pairing-state-text").textContent = open ? "Pairing open" : "Pairing closed";
  const btn = $("open-pairing");
  btn.textContent = open ? "Close pairing" : "Open pairing";
  btn.classList.toggle("is-open", open);
  btn.dataset.open = String(open);
  renderPhones(); // the empty-state hint depends on whether pairing is open
  renderQr();
}

function setBadge(id, on, detail) {
  const b = $(id);
  b.classList.toggle("on", !!on);
  b.classList.toggle("off", !on);
  b.dataset.state = on ? "on" : "off";
  b.querySelector(".badge-detail").textContent = detail || "";
}

async function togglePairing() {
  const btn = $("open-pairing");
  const open = !!(state.status && state.status.pairing_open);
  btn.disabled = true;
  const res = await act("POST", open ? "/api/pairing/close" : "/api/pairing/open");
  btn.disabled = false;
  if (res) { state.status = res; renderStatus(); }
}

// ---------------------------------------------------------------- pairing QR code

async function showQr() {
  const btn = $("show-qr");
  btn.disabled = true;
  const res = await act("POST", "/api/pairing/uri");
  btn.disabled = false;
  if (!res) return;
  state.qr = res;
  // A new URL per code: the image is never cached (it holds the one-time secret).
  $("pairing-qr-img").src = `/api/pairing/uri.svg?t=${encodeURIComponent(res.expires_at)}-${Date.now()}`;
  $("pairing-qr-uri").textContent = res.uri;
  renderQr();
}

// Shown while the car still holds this code: status says when the code on show expires,
// and null once it is used, replaced by nothing, or the pairing window closed.
function qrVisible() {
  const s = state.status;
  return !!(state.qr && s && s.pairing_open && s.pairing_uri_expires_at === state.qr.expires_at
    && Date.now() / 1000 < state.qr.expires_at);
}

function renderQr() {
  const visible = qrVisible();
  $("pairing-qr").hidden = !visible;
  if (!visible) return;
  const left = Math.max(0, state.qr.expires_at - Date.now() / 1000);
  $("pairing-qr-countdown").textContent = `${fmtTime(left * 1000)} left`;
}

// ---------------------------------------------------------------- pairing requests

function renderRequests() {
  const list = $("request-list");
  list.replaceChildren(...state.requests.map(requestCard));
  $("requests").hidden = state.requests.length === 0;
  list.closest(".requests").querySelector(".panel-title").textContent =
    state.requests.length > 1 ? `${state.requests.length} pairing requests` : "Pairing request";
  tickRequests();
}

// How each kind of code is named, and where the phone shows its side of it.
const METHODS = {
  carhub: { label: "CarHub app code", hint: "Check that the phone shows the same code" },
  "le-sc": { label: "Bluetooth LE Secure Connections code",
    hint: "Check that the phone's Bluetooth pairing prompt shows the same code" },
  ssp: { label: "Bluetooth Classic pairing code (SSP)",
    hint: "Check that the phone's Bluetooth pairing prompt shows the same code" },
};

function requestCard(r) {
  const id = encodeURIComponent(r.id);
  const method = METHODS[r.method] ? r.method : "carhub";
  const bluetooth = method !== "carhub"; // a Bluetooth bond, not the CarHub app: the address shows
  const card = el("li", {
    class: "request", "data-testid": "pairing-request", "data-request-id": r.id, "data-method": method,
    "data-code": String(r.code ?? ""), "data-expires-at": r.expires_at,
  },
    el("div", { class: "request-phone" }, icon("phone"), el("span", { text: r.phone_name || "Unknown phone" })),
    el("div", { class: "request-method", "data-testid": "pairing-method", "data-method": method,
      text: METHODS[method].label }),
    el("div", { class: "request-fp", "data-testid": "pairing-fingerprint",
      text: bluetooth ? r.phone_fingerprint : fmtFingerprint(r.phone_fingerprint), title: r.phone_fingerprint }),
    el("div", { class: "request-hint", text: METHODS[method].hint }),
    el("div", { class: "request-code", "data-testid": "pairing-code", text: fmtCode(r.code) }),
    el("div", { class: "request-timer" },
      el("div", { class: "bar" }, el("div", {})), el("span", { class: "countdown", "data-testid": "countdown" })),
    el("div", { class: "request-actions" },
      el("button", { class: "btn btn-danger", type: "button", "data-testid": "reject", text: "Reject",
        onclick: (e) => answerRequest(e.currentTarget, `/api/pairing/requests/${id}/reject`) }),
      el("button", { class: "btn btn-ok", type: "button", "data-testid": "accept", text: "Accept",
        onclick: (e) => answerRequest(e.currentTarget, `/api/pairing/requests/${id}/accept`) })),
  );
  card.dataset.total = String(Math.max(1, r.expires_at - Date.now() / 1000));
  return card;
}

async function answerRequest(button, path) {
  const buttons = button.parentElement.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  const res = await act("POST", path);
  // On success the `pairing` event removes the card; on failure let the user try again.
  if (res === undefined) buttons.forEach((b) => { b.disabled = false; });
}

function tickRequests() {
  const now = Date.now() / 1000;
  for (const card of document.querySelectorAll(".request")) {
    const left = Math.max(0, Number(card.dataset.expiresAt) - now);
    const total = Number(card.dataset.total) || 1;
    card.querySelector(".countdown").textContent = left > 0 ? `${fmtTime(left * 1000)} left` : "Expired";
    card.querySelector(".bar > div").style.width = `${Math.min(100, (left / total) * 100)}%`;
    const expired = left <= 0;
    card.classList.toggle("expired", expired);
    if (expired) card.querySelector('[data-testid="accept"]').disabled = true;
  }
}

// ---------------------------------------------------------------- phones

function renderPhones() {
  const list = $("phone-list");
  const phones = state.phones;
  list.replaceChildren(...phones.map(phoneRow));
  $("phones-count").textContent = phones.length ? String(phones.length) : "";
  $("phones-empty").hidden = phones.length > 0;
  list.hidden = phones.length === 0;
  const open = !!(state.status && state.status.pairing_open);
  const where = state.status && state.status.apple
    ? "in the CarHub app on your phone, or in an iPhone's Settings › Bluetooth."
    : "in the CarHub app on your phone.";
  $("phones-empty-hint").textContent = open
    ? `Pairing is open. Choose this car ${where}`
    : `Open pairing, then choose this car ${where}`;
}

function profilesOf(p) {
  return Array.isArray(p && p.profiles) ? p.profiles : ["carhub"];
}

// A phone with the CarHub app or PBAP (Bluetooth Classic) syncs contacts; AMS/ANCS alone has none.
function isCarhubPhone(p) {
  const profiles = profilesOf(p);
  return profiles.includes("carhub") || profiles.includes("pbap");
}

function isClassicPhone(p) {
  return profilesOf(p).includes("pbap");
}

function phoneRow(p) {
  const selected = p.id === state.selectedPhoneId;
  const transport = p.connected && p.transport ? String(p.transport).toUpperCase() : null;
  const count = Number(p.contacts || 0);
  const carhub = isCarhubPhone(p);
  const profiles = profilesOf(p);
  const row = el("li", {
    class: `phone${selected ? " selected" : ""}${p.connected ? " connected" : ""}`,
    "data-testid": "phone", "data-phone-id": p.id, "data-connected": String(!!p.connected),
    "aria-selected": String(selected), role: "button", tabindex: "0",
    onclick: () => selectPhone(p.id),
    onkeydown: (e) => { if (e.key === "Enter") selectPhone(p.id); },
  },
    el("div", { class: "phone-icon" }, icon("phone"), el("span", { class: "dot" })),
    el("div", { class: "phone-main" },
      el("div", { class: "phone-name", text: p.name || "Phone" }),
      el("div", { class: "phone-meta" },
        el("span", { class: `chip${p.connected ? " on" : ""}`, "data-testid": "phone-state",
          text: p.connected ? (transport || "Connected") : "Offline" }),
        el("span", { "data-testid": "phone-contacts", "data-count": count,
          text: carhub ? `${count.toLocaleString()} ${count === 1 ? "contact" : "contacts"}` : "no contacts" })),
      el("div", { class: "phone-meta" },
        el("span", { class: "profiles", "data-testid": "phone-profiles", "data-profiles": profiles.join(",") },
          ...profiles.map((name) => el("span", { class: "chip profile", "data-profile": name,
            text: name === "carhub" ? "CarHub" : name.toUpperCase(), title: PROFILE_TITLES[name] || name }))),
        carhub ? el("span", { class: "ago", "data-testid": "phone-last-sync", "data-ts": p.last_sync ?? "",
          text: fmtAgo(p.last_sync) }) : null),
      el("div", { class: "phone-fp", text: profiles.includes("carhub") ? fmtFingerprint(p.fingerprint, 6) : p.fingerprint,
        title: p.fingerprint })),
    el("div", { class: "phone-actions" }, unpairButton(p)),
  );
  return row;
}

// Two taps unpair: the first arms the button, the second (within CONFIRM_MS) unpairs. The
// armed phone is remembered here, not in the DOM, so a live re-render keeps it armed.
let armed = { phoneId: null, timer: 0 };

function unpairButton(p) {
  const btn = el("button", { class: "btn btn-danger", type: "button", "data-testid": "unpair", text: "Unpair" });
  if (armed.phoneId === p.id) arm(btn, p);
  btn.addEventListener("click", async (e) => {
    e.stopPropagation();
    if (armed.phoneId !== p.id) {
      disarm();
      armed = { phoneId: p.id, timer: setTimeout(disarm, CONFIRM_MS) };
      arm(btn, p);
      return;
    }
    clearTimeout(armed.timer);
    armed = { phoneId: null, timer: 0 };
    btn.disabled = true;
    const res = await act("DELETE", `/api/phones/${encodeURIComponent(p.id)}`);
    if (res === undefined) { btn.disabled = false; disarmButton(btn); }
  });
  return btn;
}

function arm(btn, p) {
  btn.dataset.confirm = "true";
  btn.classList.add("confirming");
  btn.textContent = "Confirm";
  btn.setAttribute("aria-label", `Tap again to unpair ${p.name || "this phone"}`);
}

function disarm() {
  clearTimeout(armed.timer);
  armed = { phoneId: null, timer: 0 };
  for (const btn of document.querySelectorAll('[data-testid="unpair"][data-confirm="true"]')) disarmButton(btn);
}

function disarmButton(btn) {
  btn.dataset.confirm = "false";
  btn.classList.remove("confirming");
  btn.textContent = "Unpair";
  btn.removeAttribute("aria-label");
}

function selectPhone(id) {
  if (id === state.selectedPhoneId) return;
  state.selectedPhoneId = id;
  for (const row of document.querySelectorAll('[data-testid="phone"]')) {
    const on = row.dataset.phoneId === String(id);
    row.classList.toggle("selected", on);
    row.setAttribute("aria-selected", String(on));
  }
  const search = $("contacts-search");
  search.value = "";
  state.contacts.q = "";
  state.contacts.items = [];
  state.contacts.total = 0;
  loadContacts(true);
  renderMediaSource();
  renderSync();
  loadCalls();
}

// Keep the selection valid when the phone list changes; pick a phone when none is chosen.
function reconcileSelection() {
  const ids = state.phones.map((p) => p.id);
  if (state.selectedPhoneId !== null && ids.includes(state.selectedPhoneId)) return;
  const preferred = state.phones.find((p) => p.connected) || state.phones[0];
  state.selectedPhoneId = null;
  if (preferred) selectPhone(preferred.id);
  else { state.contacts = { ...state.contacts, items: [], total: 0 }; renderContacts(); }
}

// ---------------------------------------------------------------- contacts

async function loadContacts(reset, keepCount = 0) {
  const phoneId = state.selectedPhoneId;
  if (phoneId === null) return;
  const c = state.contacts;
  const seq = ++c.seq; // answers to superseded requests (older query, other phone) are dropped
  const offset = reset ? 0 : c.items.length;
  const limit = Math.max(PAGE, keepCount);
  const qs = new URLSearchParams({ q: c.q, limit: String(limit), offset: String(offset) });
  c.loading = true;
  if (reset && !keepCount) renderContacts();
  let page;
  try {
    page = await api("GET", `/api/phones/${encodeURIComponent(phoneId)}/contacts?${qs}`);
  } catch (err) {
    if (seq === c.seq) { c.loading = false; renderContacts(); toast(err.message); }
    return;
  }
  if (seq !== c.seq || phoneId !== state.selectedPhoneId) return;
  c.loading = false;
  c.total = Number(page.total || 0);
  c.items = reset ? page.items || [] : c.items.concat(page.items || []);
  renderContacts(!reset || keepCount > 0);
}

function renderContacts(keepScroll = false) {
  const c = state.contacts;
  const list = $("contact-list");
  const scrollTop = list.scrollTop;
  const phone = state.phones.find((p) => p.id === state.selectedPhoneId);
  const search = $("contacts-search");
  const noContacts = !!phone && !isCarhubPhone(phone);
  search.disabled = !phone || noContacts;
  $("contacts-heading").textContent = phone ? `Contacts · ${phone.name || "Phone"}` : "Contacts";
  $("contacts-count-wrap").hidden = !phone;
  $("contacts-count").textContent = String(c.total);
  $("contacts-count").dataset.total = String(c.total);
  $("contacts-count-label").textContent = c.q ? (c.total === 1 ? "match" : "matches")
    : (c.total === 1 ? "contact" : "contacts");

  const rows = c.items.map(contactRow);
  if (c.items.length < c.total && !c.loading) {
    rows.push(el("li", { class: "load-more" }, el("button", {
      class: "btn", type: "button", "data-testid": "load-more",
      text: `Load more (${(c.total - c.items.length).toLocaleString()} left)`,
      onclick: () => loadContacts(false),
    })));
  } else if (c.loading && c.items.length) {
    rows.push(el("li", { class: "list-status", text: "Loading…" }));
  }
  list.replaceChildren(...rows);
  if (keepScroll) list.scrollTop = scrollTop; else list.scrollTop = 0;

  const empty = !phone || (c.items.length === 0);
  $("contacts-empty").hidden = !empty;
  list.hidden = empty;
  if (empty) {
    $("contacts-empty-title").textContent = !phone ? "No phone selected"
      : noContacts ? "No contacts" : c.loading ? "Loading…" : c.q ? "No matches" : "No contacts yet";
    $("contacts-empty-hint").textContent = !phone
      ? (state.phones.length ? "Select a paired phone to see its contacts." : "Pair a phone to see its contacts here.")
      : noContacts ? "This phone shares its media and notifications with the car, not its contacts."
      : isClassicPhone(phone) && !c.q && !c.loading ? "They appear here as the phone's book downloads."
      : c.loading ? "" : c.q ? `Nothing matches “${c.q}”.` : "They appear here after the phone syncs.";
  }
}

function contactRow(ct) {
  const phones = Array.isArray(ct.phones) ? ct.phones : [];
  const emails = Array.isArray(ct.emails) ? ct.emails : [];
  const first = phones[0];
  const details = el("div", { class: "contact-details" },
    ...phones.map((p) => el("div", {}, el("span", { class: "k", text: p.type || "phone" }), p.number)),
    ...emails.map((m) => el("div", {}, el("span", { class: "k", text: "email" }),
      typeof m === "string" ? m : m.address || "")));
  const row = el("li", { class: "contact", "data-testid": "contact", "data-uid": ct.uid,
    onclick: () => row.classList.toggle("open") },
    el("div", { class: "avatar", style: `background:${avatarColour(ct.uid || ct.name)}`, text: initials(ct.name) }),
    el("div", { class: "contact-main" },
      el("div", { class: "contact-name", "data-testid": "contact-name", text: ct.name || "(no name)" }),
      el("div", { class: "contact-sub" },
        first ? el("span", { class: "contact-phone", "data-testid": "contact-phone", text: first.number }) : null,
        first && first.type ? el("span", { class: "contact-type", text: first.type }) : null,
        ct.org ? el("span", { class: "contact-org", "data-testid": "contact-org", text: ct.org }) : null),
      details),
  );
  return row;
}

let searchTimer = 0;
function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const q = $("contacts-search").value.trim();
    if (q === state.contacts.q) return;
    state.contacts.q = q;
    loadContacts(true);
  }, SEARCH_DEBOUNCE_MS);
}

// ---------------------------------------------------------------- Classic pull and recent calls

// The selected phone's running (or last) pull: a bar while pages arrive, a line after.
function renderSync() {
  const d = state.sync[state.selectedPhoneId];
  const box = $("sync-progress");
  box.hidden = !d;
  if (!d) return;
  const total = Number(d.total || 0);
  const done = Math.min(Number(d.done || 0), total);
  const running = d.stage === "contacts" || d.stage === "photos";
  box.dataset.stage = d.stage;
  box.dataset.done = String(done);
  box.dataset.total = String(total);
  $("sync-fill").style.width = `${total > 0 ? (done / total) * 100 : (running ? 0 : 100)}%`;
  $("sync-label").textContent = running
    ? `${SYNC_STAGES[d.stage]} · ${done.toLocaleString()} of ${total.toLocaleString()}`
    : (SYNC_STAGES[d.stage] || "");
}

async function loadCalls() {
  const phone = state.phones.find((p) => p.id === state.selectedPhoneId);
  const c = state.calls;
  const seq = ++c.seq;
  if (!phone || !isClassicPhone(phone)) {
    state.calls = { phoneId: null, items: [], seq };
    renderCalls();
    return;
  }
  let items;
  try {
    items = await api("GET", `/api/phones/${encodeURIComponent(phone.id)}/calls`);
  } catch (_) {
    return; // unpaired meanwhile: the `phones` event clears the panel
  }
  if (seq !== state.calls.seq) return;
  state.calls = { phoneId: phone.id, items: Array.isArray(items) ? items : [], seq };
  renderCalls();
}

function renderCalls() {
  const c = state.calls;
  const phone = state.phones.find((p) => p.id === state.selectedPhoneId);
  $("calls-panel").hidden = !(phone && isClassicPhone(phone));
  $("calls-count").textContent = c.items.length ? String(c.items.length) : "";
  $("call-list").replaceChildren(...c.items.map((call) => el("li", {
    class: "call", "data-testid": "call", "data-type": call.type },
    el("span", { class: "call-name", "data-testid": "call-name", text: call.name || call.number || "Unknown" }),
    el("span", { class: "call-type", "data-testid": "call-type", text: call.type }),
    el("span", { class: "call-time", "data-testid": "call-time", "data-date": call.date,
      text: fmtNoteTime(call.date) }))));
  $("call-list").hidden = c.items.length === 0;
  $("calls-empty").hidden = c.items.length > 0;
}

// ---------------------------------------------------------------- now playing

function renderMedia() {
  const m = state.media || {};
  const panel = document.querySelector(".np-panel");
  const hasTrack = !!(m.title || (m.artists && m.artists.length));
  panel.dataset.state = m.state || "stopped";
  panel.dataset.empty = String(!hasTrack);
  $("np-title").textContent = hasTrack ? (m.title || "Unknown title") : "Nothing playing";
  $("np-artists").textContent = Array.isArray(m.artists) ? m.artists.join(", ") : (m.artists || "");
  $("np-album").textContent = m.album || "";
  setArtwork(m.artwork_url);
  const playing = m.state === "playing";
  const pp = $("btn-playpause");
  pp.dataset.state = m.state || "stopped";
  pp.setAttribute("aria-label", playing ? "Pause" : "Play");
  pp.querySelector("use").setAttribute("href", playing ? "#i-pause" : "#i-play");
  $("np-duration").textContent = fmtTime(m.duration_ms);
  $("np-progress").setAttribute("aria-valuemax", String(m.duration_ms || 0));
  renderMediaSource();
  tickMedia();
}

function renderMediaSource() {
  const m = state.media || {};
  const phone = state.phones.find((p) => p.id === m.phone_id);
  const ams = m.source === "ams";
  $("np-source").textContent = (phone ? `Now playing · ${phone.name}` : "Now playing") + (ams ? " · AMS" : "");
  $("np-source").dataset.source = m.source || "";
  $("np-progress").dataset.seekable = String(!ams); // AMS has no seek command
}

let artworkUrl = undefined;
function setArtwork(url) {
  if (url === artworkUrl) return;
  artworkUrl = url;
  const img = $("np-artwork");
  const backdrop = $("np-backdrop");
  if (!url) {
    img.removeAttribute("src");
    img.hidden = true;
    img.dataset.placeholder = "true";
    $("np-placeholder").hidden = false;
    backdrop.style.backgroundImage = "none";
    return;
  }
  img.dataset.placeholder = "false";
  img.hidden = false;
  $("np-placeholder").hidden = true;
  img.src = url;
  backdrop.style.backgroundImage = `url("${String(url).replace(/["\\]/g, "\\$&")}")`;
}

function onArtworkError() {
  const img = $("np-artwork");
  img.hidden = true;
  img.dataset.placeholder = "true";
  $("np-placeholder").hidden = false;
  $("np-backdrop").style.backgroundImage = "none";
}

function currentPosition() {
  const m = state.media;
  if (!m) return 0;
  let pos = Number(m.position_ms || 0);
  if (m.state === "playing") {
    const rate = m.rate === null || m.rate === undefined ? 1 : Number(m.rate);
    pos += (performance.now() - state.mediaAt) * rate;
  }
  const dur = Number(m.duration_ms || 0);
  return dur > 0 ? Math.min(Math.max(0, pos), dur) : Math.max(0, pos);
}

function tickMedia() {
  const m = state.media || {};
  const pos = currentPosition();
  const dur = Number(m.duration_ms || 0);
  $("np-position").textContent = fmtTime(pos);
  $("np-progress-fill").style.width = dur > 0 ? `${(pos / dur) * 100}%` : "0%";
  const bar = $("np-progress");
  bar.setAttribute("aria-valuenow", String(Math.round(pos)));
  bar.dataset.positionMs = String(Math.round(pos));
}

function mediaCommand(action, extra = {}) {
  return act("POST", "/api/media/command", { action, ...extra });
}

function onPlayPause() {
  const playing = state.media && state.media.state === "playing";
  mediaCommand(playing ? "pause" : "play");
}

function onSeek(event) {
  const m = state.media;
  if (!m || !m.duration_ms) return;
  if (m.source === "ams") { toast("This phone's player cannot seek from the car", "info"); return; }
  const rect = $("np-progress").getBoundingClientRect();
  const frac = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
  mediaCommand("seek", { position_ms: Math.round(frac * m.duration_ms) });
}

// ---------------------------------------------------------------- notifications (ANCS)

// Shown once a phone offers notifications (or some are kept): otherwise the page is as it was.
function renderNotifications() {
  const notes = state.notifications;
  const offered = state.phones.some((p) => profilesOf(p).includes("ancs"));
  $("notes-panel").hidden = !(offered || notes.length);
  $("notes-count").textContent = notes.length ? String(notes.length) : "";
  $("note-list").replaceChildren(...notes.map(noteCard));
  $("note-list").hidden = notes.length === 0;
  $("notes-empty").hidden = notes.length > 0;
}

function noteCard(n) {
  const path = `/api/notifications/${encodeURIComponent(n.phone_id)}/${encodeURIComponent(n.uid)}/action`;
  const button = (action, label) => el("button", {
    class: `btn${action === "negative" ? " btn-danger" : ""}`, type: "button",
    "data-testid": `notification-${action}`, text: label, title: label,
    onclick: (e) => notificationAction(e.currentTarget, path, action),
  });
  const actions = [
    n.positive_action ? button("positive", n.positive_action) : null,
    n.negative_action ? button("negative", n.negative_action) : null,
  ].filter(Boolean);
  return el("li", { class: "note", "data-testid": "notification", "data-phone-id": n.phone_id,
    "data-uid": n.uid, "data-category": n.category },
    el("div", { class: "note-head" }, icon("bell"),
      el("span", { class: "note-app", "data-testid": "notification-app", text: n.app_name || n.app_id || "App" }),
      el("span", { class: "note-time", "data-testid": "notification-time", "data-date": n.date, text: fmtNoteTime(n.date) })),
    n.title ? el("div", { class: "note-title", "data-testid": "notification-title", text: n.title }) : null,
    n.subtitle ? el("div", { class: "note-subtitle", "data-testid": "notification-subtitle", text: n.subtitle }) : null,
    n.message ? el("div", { class: "note-message", "data-testid": "notification-message", text: n.message }) : null,
    actions.length ? el("div", { class: "note-actions" }, ...actions) : null,
  );
}

// The phone's local time, "YYYY-MM-DDTHH:MM:SS": the time alone today, else the day too.
function fmtNoteTime(date) {
  const d = new Date(String(date || ""));
  if (Number.isNaN(d.getTime())) return "";
  const hm = `${d.getHours()}:${String(d.getMinutes()).padStart(2, "0")}`;
  if (d.toDateString() === new Date().toDateString()) return hm;
  return `${d.toLocaleDateString(undefined, { day: "numeric", month: "short" })} ${hm}`;
}

async function notificationAction(button, path, action) {
  const buttons = button.parentElement.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  const res = await act("POST", path, { action });
  // The phone removes the notification (a `notifications` event); on failure allow a retry.
  if (res === undefined) buttons.forEach((b) => { b.disabled = false; });
}

// ---------------------------------------------------------------- live events

const handlers = {
  status: (d) => { state.status = d; renderStatus(); },
  pairing: (d) => { state.requests = Array.isArray(d) ? d : []; renderRequests(); },
  phones: (d) => {
    state.phones = Array.isArray(d) ? d : [];
    renderPhones();
    reconcileSelection();
    renderContacts(true);
    renderMediaSource();
    renderNotifications();
    renderSync();
    if (state.calls.phoneId !== state.selectedPhoneId) loadCalls(); else renderCalls();
  },
  sync: (d) => { if (d && d.phone_id) { state.sync[d.phone_id] = d; renderSync(); } },
  calls: (d) => { if (d && d.phone_id === state.selectedPhoneId) loadCalls(); },
  notifications: (d) => { state.notifications = Array.isArray(d) ? d : []; renderNotifications(); },
  pairing_failed: (d) => { if (d && d.reason) toast(`Bluetooth pairing failed: ${d.reason}`); },
  contacts: (d) => {
    if (d && d.phone_id === state.selectedPhoneId) loadContacts(true, state.contacts.items.length);
  },
  media: (d) => { state.media = d; state.mediaAt = performance.now(); renderMedia(); },
};

function apply(type, data, fromSocket) {
  if (!handlers[type]) return;
  if (fromSocket) state.wsSeen.add(type);
  else if (state.wsSeen.has(type)) return;
  handlers[type](data);
}

let backoff = BACKOFF_MIN_MS;
let everConnected = false;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/events`);
  ws.onopen = () => {
    backoff = BACKOFF_MIN_MS;
    everConnected = true;
    setConnection("online");
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    if (msg && typeof msg.type === "string") apply(msg.type, msg.data, true);
  };
  ws.onclose = () => {
    setConnection(everConnected ? "reconnecting" : "connecting");
    // Exponential backoff with jitter, so a car restart is not met by a synchronized stampede.
    const delay = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    setTimeout(connect, delay);
  };
}

function setConnection(s) {
  const c = $("connection");
  c.dataset.state = s;
  c.hidden = s === "online";
  c.querySelector(".connection-text").textContent = s === "reconnecting" ? "Reconnecting…" : "Connecting…";
}

async function initialLoad() {
  const slices = [
    ["status", "/api/status"], ["pairing", "/api/pairing/requests"],
    ["phones", "/api/phones"], ["media", "/api/media"], ["notifications", "/api/notifications"],
  ];
  await Promise.all(slices.map(async ([type, path]) => {
    try { apply(type, await api("GET", path), false); } catch (_) { /* the socket will deliver */ }
  }));
}

// ---------------------------------------------------------------- start-up

function tickClock() {
  const d = new Date();
  $("clock").textContent = `${d.getHours()}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function tickAgo() {
  for (const span of document.querySelectorAll(".ago")) {
    span.textContent = fmtAgo(span.dataset.ts === "" ? null : Number(span.dataset.ts));
  }
}

function start() {
  $("open-pairing").addEventListener("click", togglePairing);
  $("show-qr").addEventListener("click", showQr);
  $("contacts-search").addEventListener("input", onSearchInput);
  $("btn-prev").addEventListener("click", () => mediaCommand("previous"));
  $("btn-next").addEventListener("click", () => mediaCommand("next"));
  $("btn-playpause").addEventListener("click", onPlayPause);
  $("np-progress").addEventListener("click", onSeek);
  $("np-artwork").addEventListener("error", onArtworkError);
  setArtwork(null);
  renderContacts();
  setConnection("connecting");
  tickClock();
  setInterval(() => { tickMedia(); tickRequests(); renderQr(); }, 250);
  setInterval(tickClock, 5000);
  setInterval(tickAgo, 15000);
  initialLoad();
  connect();
}

start();
