// Shared by every page: API calls with the CSRF header, messages, the confirm dialog,
// relative times, live refresh of [data-live] regions, switches, growing textareas.

const CSRF_COOKIE = "neonrain_csrf";

export class ApiError extends Error {
  constructor(message, code, status, body) {
    super(message);
    this.code = code;
    this.status = status;
    this.body = body || {};
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Calls the JSON API; resolves with the body (null for 204), rejects with an ApiError.
 *  `anonymous`: a call made without a session (sign-in, sign-up), whose 401 is its own answer. */
export async function api(path, { method = "GET", body, anonymous = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("Neonrain could not be reached; check your connection and try again.", "NETWORK", 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    let message = (data && data.error) || `The request failed (HTTP ${response.status}).`;
    // Only a refused session means the person was signed out; a wrong password is not that.
    if (response.status === 401 && !anonymous && data && data.code === "UNAUTHENTICATED") {
      message = "Your session has ended; sign in again (reload the page).";
    }
    throw new ApiError(message, (data && data.code) || `HTTP_${response.status}`, response.status, data);
  }
  return data;
}

// ------------------------------------------------------------------ messages

/** Shows a message in a status element (role=status) or, without one, in the page's flash area. */
export function say(target, message, kind = "info") {
  const el = target || document.getElementById("flash");
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = !message;
  if (el.id === "flash" && message) {
    clearTimeout(el._timer);
    el._timer = setTimeout(() => { el.textContent = ""; el.hidden = true; }, 8000);
  }
}

export function flashAfterReload(message, kind = "success") {
  try { sessionStorage.setItem("neonrain.flash", JSON.stringify({ message, kind })); } catch { /* private mode */ }
}

function showStoredFlash() {
  let stored = null;
  try {
    stored = JSON.parse(sessionStorage.getItem("neonrain.flash") || "null");
    sessionStorage.removeItem("neonrain.flash");
  } catch { stored = null; }
  if (stored && stored.message) say(null, stored.message, stored.kind);
}

/** Field errors: shows `message` under the input with id `inputId` (its error has id inputId-error). */
export function fieldError(input, message) {
  if (!input) return;
  const el = document.getElementById(`${input.id}-error`) ||
    (input.getAttribute("aria-describedby") || "").split(" ").map((id) => document.getElementById(id))
      .find((e) => e && e.classList.contains("field-error"));
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  if (el) {
    el.textContent = message || "";
    el.hidden = !message;
  }
}

export function clearErrors(form) {
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  form.querySelectorAll(".field-error, .form-error").forEach((e) => { e.textContent = ""; e.hidden = true; });
}

/** Maps an API validation error's details onto the form's inputs (by name); true when shown. */
export function showFieldErrors(form, error) {
  const details = (error.body && error.body.details) || [];
  let shown = false;
  for (const detail of details) {
    const name = String(detail.field || "").split(".").pop();
    const input = name && form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) {
      fieldError(input, detail.message || error.message);
      if (!shown) input.focus();
      shown = true;
    }
  }
  return shown;
}

// ------------------------------------------------------------------ confirm dialog

/** An accessible confirmation (a modal <dialog>); resolves true when confirmed. With
 *  `requireText`, the person must type that text (case-insensitive) to enable the button. */
export function confirmAction({ title, message, confirmLabel = "Confirm", requireText = null, requireLabel = "" }) {
  const dialog = document.getElementById("confirm-dialog");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  const extra = document.getElementById("confirm-extra");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-message").textContent = message;
  ok.textContent = confirmLabel;
  extra.replaceChildren();
  let input = null;
  if (requireText) {
    const label = document.createElement("label");
    label.htmlFor = "confirm-input";
    label.textContent = requireLabel || `Type ${requireText} to confirm`;
    input = document.createElement("input");
    input.id = "confirm-input";
    input.type = "text";
    input.autocomplete = "off";
    input.spellcheck = false;
    extra.append(label, input);
    ok.disabled = true;
    input.addEventListener("input", () => {
      ok.disabled = input.value.trim().toLowerCase() !== requireText.trim().toLowerCase();
    });
  } else {
    ok.disabled = false;
  }
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      resolve(dialog.returnValue === "confirm");
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
    };
    dialog.returnValue = "cancel";
    dialog.addEventListener("close", done);
    dialog.showModal();
    (input || cancel).focus();
  });
}

function closeDialogOnBackdrop() {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close("cancel");
  });
}

// ------------------------------------------------------------------ relative times

export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  let seconds = (now - then) / 1000;
  const future = seconds < 0;
  seconds = Math.abs(seconds);
  if (seconds < 45) return "just now";
  const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, size] of units) {
    if (seconds >= size) {
      const count = Math.max(size === 60 ? Math.round(seconds / size) : Math.floor(seconds / size), 1);
      const text = `${count} ${unit}${count === 1 ? "" : "s"}`;
      return future ? `in ${text}` : `${text} ago`;
    }
  }
  return "just now";
}

export function refreshTimes(root = document) {
  root.querySelectorAll("time[data-relative]").forEach((el) => {
    const text = relativeTime(el.getAttribute("datetime"));
    if (text && el.textContent !== text) el.textContent = text;
  });
}

// ------------------------------------------------------------------ live refresh

export const REFRESH_MS = Number(localStorage.getItem("neonrain.refreshMs")) || 15000;
const liveListeners = [];
let liveTimer = null;
let liveBusy = null;

export function onLiveUpdate(listener) { liveListeners.push(listener); }

/** Fetches the page again (its query, plus `query`'s parameters) and returns it parsed. */
export async function fetchPage(query = "") {
  const src = new URL(document.body.dataset.liveSrc, window.location.href);
  new URLSearchParams(query).forEach((value, name) => src.searchParams.set(name, value));
  const response = await fetch(src, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (new URL(response.url).pathname === "/login") {
    throw new ApiError("Your session has ended; sign in again.", "UNAUTHENTICATED", 401);
  }
  if (!response.ok) throw new ApiError(`The page could not be refreshed (HTTP ${response.status}).`, "HTTP", response.status);
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

// What the server last sent for each region: a region is swapped only when that changes, so what
// the page did in between (an open list, a switch just flipped, a message shown) is not undone by
// a refresh that brings nothing new.
const serverHtml = new WeakMap();

function rememberServerHtml(root = document) {
  root.querySelectorAll("[data-live]").forEach((region) => serverHtml.set(region, region.innerHTML));
}

/** A [data-live-hold] region is not swapped while someone types in it (e.g. a bot token). */
function beingEdited(region) {
  if (!("liveHold" in region.dataset)) return false;
  const active = document.activeElement;
  if (active && region.contains(active) && active.matches("input, textarea, select")) return true;
  return [...region.querySelectorAll("input:not([type=hidden]), textarea")]
    .some((field) => field.value !== field.defaultValue);
}

function focusKey(element) {
  if (element.id) return `#${CSS.escape(element.id)}`;
  if (element.dataset.focusId) return `[data-focus-id="${CSS.escape(element.dataset.focusId)}"]`;
  return null;
}

function swapRegion(current, fresh) {
  if (current.dataset.liveMode === "prepend") {
    const known = new Set([...current.children].map((c) => c.dataset.key));
    const added = [...fresh.children].filter((c) => !known.has(c.dataset.key));
    for (const child of added.reverse()) current.prepend(document.importNode(child, true));
    return added.length > 0;
  }
  for (const attr of fresh.attributes) {
    if (attr.name.startsWith("data-") && current.getAttribute(attr.name) !== attr.value) {
      current.setAttribute(attr.name, attr.value);
    }
  }
  const html = fresh.innerHTML;
  if (serverHtml.get(current) === html || beingEdited(current)) return false;
  // Messages shown in [data-live-keep] elements (results of an action) outlive the swap.
  const kept = [...current.querySelectorAll("[data-live-keep][id]")]
    .filter((el) => el.textContent)
    .map((el) => ({ id: el.id, text: el.textContent, kind: el.dataset.kind, hidden: el.hidden }));
  const focused = document.activeElement;
  const key = focused && focused !== current && current.contains(focused) ? focusKey(focused) : null;
  current.innerHTML = html;
  serverHtml.set(current, html);
  for (const { id, text, kind, hidden } of kept) {
    const el = document.getElementById(id);
    if (!el || !current.contains(el)) continue;
    el.textContent = text;
    if (kind) el.dataset.kind = kind;
    el.hidden = hidden;
  }
  if (focused && focused !== document.body && !focused.isConnected) {
    const again = key && current.querySelector(key);
    (again || document.getElementById("main")).focus();
  }
  return true;
}

/** Refreshes every [data-live] region now; resolves when done. */
export function refreshNow() {
  if (liveBusy) return liveBusy;
  liveBusy = (async () => {
    const status = document.getElementById("live-status");
    try {
      const doc = await fetchPage();
      if (doc.title && document.title !== doc.title) document.title = doc.title;
      doc.querySelectorAll("[data-live]").forEach((fresh) => {
        const current = document.querySelector(`[data-live="${CSS.escape(fresh.dataset.live)}"]`);
        if (current) swapRegion(current, fresh);
      });
      fixImages();
      refreshTimes();
      if (status) { status.hidden = true; status.textContent = ""; }
      for (const listener of liveListeners) listener(doc);
    } catch (error) {
      if (status) {
        status.hidden = false;
        status.textContent = `Live updates paused: ${error.message} Retrying…`;
      }
    } finally {
      liveBusy = null;
    }
  })();
  return liveBusy;
}

function startLive() {
  if (!document.body.dataset.liveSrc) return;
  clearInterval(liveTimer);
  liveTimer = setInterval(() => {
    if (document.visibilityState === "visible") refreshNow();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshNow();
  });
}

// ------------------------------------------------------------------ switches

/** Wires the bot on/off switches ([data-toggle-server]) under `root`, which must outlive live
 *  refreshes (the switches themselves may be replaced while a change is under way).
 *  `statusFor(serverId)` returns the element that tells the result. */
export function bindSwitches(root, { statusFor, onChanged } = {}) {
  const switchOf = (serverId) => root.querySelector(`[data-toggle-server="${CSS.escape(serverId)}"]`);
  const status = (serverId) => (statusFor ? statusFor(serverId) : null);
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-toggle-server]");
    if (!button || button.disabled || button.getAttribute("aria-busy") === "true") return;
    const serverId = button.dataset.toggleServer;
    const next = button.getAttribute("aria-checked") !== "true";
    button.setAttribute("aria-busy", "true");
    say(status(serverId), next ? "Switching on…" : "Switching off…");
    try {
      const config = await api(`/api/servers/${encodeURIComponent(serverId)}`, { method: "PUT", body: { botActive: next } });
      const state = serverState(config);
      const current = switchOf(serverId);
      if (current) setSwitch(current, config.botActive, state.kind);
      say(status(serverId), switchedMessage(config), state.kind === "not_answering" ? "error" : "success");
      if (onChanged) onChanged(config);
    } catch (error) {
      say(status(serverId), error.message, "error");
    } finally {
      button.removeAttribute("aria-busy");
      const current = switchOf(serverId);
      if (current) current.removeAttribute("aria-busy");
    }
  });
}

export function setSwitch(button, on, state) {
  button.setAttribute("aria-checked", on ? "true" : "false");
  if (state) button.dataset.state = state;
  const text = button.querySelector(".switch-text");
  if (text) text.textContent = on ? "On" : "Off";
}

// ------------------------------------------------------------------ readiness

/** A server configuration's state from its `readiness` (the rule of neonrain/readiness.py's
 *  summarize): Active only when every check is ok; Off when switched off; otherwise why not. */
export function serverState(config) {
  if (!config.botActive) return { kind: "off", label: "Off", reason: null };
  const checks = (config.readiness && config.readiness.checks) || [];
  if (config.readiness && config.readiness.ready) return { kind: "active", label: "Active", reason: null };
  const problem = checks.find((c) => c.state === "problem");
  if (problem) return { kind: "not_answering", label: `On, but not answering: ${problem.message}`, reason: problem.message };
  const pending = checks.find((c) => c.state === "unknown");
  return { kind: "checking", label: "On — checking…", reason: pending ? pending.message : null };
}

/** What switching a server on or off did, without promising answers the bot cannot give. */
export function switchedMessage(config) {
  const state = serverState(config);
  const where = config.guildName;
  if (state.kind === "off") return `The bot is now off in ${where}.`;
  if (state.kind === "active") return `The bot is now active in ${where}.`;
  if (state.kind === "not_answering") return `Switched on in ${where}, but the bot is not answering: ${state.reason}`;
  return `Switched on in ${where}; checking that the bot can answer there…`;
}

// ------------------------------------------------------------------ small things

export function fixImages(root = document) {
  root.querySelectorAll("img[data-fallback]").forEach((img) => {
    if (img._fallbackBound) return;
    img._fallbackBound = true;
    const drop = () => { img.hidden = true; img.classList.add("broken"); };
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) drop();
    img.addEventListener("error", drop);
  });
}

export function autoGrow(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 640)}px`;
}

export function formatCount(n) { return n.toLocaleString("en-US"); }

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

rememberServerHtml();
showStoredFlash();
closeDialogOnBackdrop();
fixImages();
refreshTimes();
setInterval(refreshTimes, 30000);
startLive();
