// /dashboard/servers/:serverId: activation switch, configuration editor (with where and when the
// bot speaks, behaviour.js), websites, agent actions, removing the server. Live regions (header,
// activation, stats, websites, actions) are refreshed by common.js; the configuration form follows
// changes made elsewhere while it has no edits.
import { initBehaviour } from "./behaviour.js";
import {
  api, autoGrow, bindSwitches, clearErrors, confirmAction, copyText, fetchPage, fieldError,
  fixImages, flashAfterReload, onLiveUpdate, refreshNow, refreshTimes, say, setSwitch,
  showFieldErrors,
} from "./common.js";

const serverId = document.body.dataset.serverId;
const base = `/api/servers/${encodeURIComponent(serverId)}`;

// ------------------------------------------------------------------ activation

bindSwitches(document.getElementById("activation-card"), {
  statusFor: () => document.getElementById("activation-status"),
  onChanged: () => refreshNow(),
});

// ------------------------------------------------------------------ engine

const engineChoice = document.getElementById("engine-choice");
if (engineChoice) {
  const engineStatus = document.getElementById("engine-choice-status");
  const unavailable = document.getElementById("engine-unavailable");
  const names = { huma: "HUMA", openai: "the OpenAI-compatible model" };
  engineChoice.addEventListener("change", async (event) => {
    const input = event.target.closest("input[name=engine]");
    if (!input) return;
    const previous = engineChoice.dataset.current;
    const radios = [...engineChoice.querySelectorAll("input[name=engine]")];
    const wasDisabled = radios.map((r) => r.disabled);
    radios.forEach((r) => { r.disabled = true; });
    say(engineStatus, "Switching…");
    try {
      const config = await api(base, { method: "PUT", body: { engine: input.value } });
      engineChoice.dataset.current = config.engine;
      if (unavailable) unavailable.hidden = true;
      say(engineStatus, `${names[config.engine]} now answers in ${config.guildName}.`, "success");
    } catch (error) {
      const back = engineChoice.querySelector(`input[value="${CSS.escape(previous)}"]`);
      if (back) back.checked = true;
      say(engineStatus, error.message, "error");
    } finally {
      radios.forEach((r, i) => { r.disabled = wasDisabled[i]; });
      (engineChoice.querySelector("input:checked") || input).focus();
    }
  });
}

// ------------------------------------------------------------------ configuration

const form = document.getElementById("config-form");
// The texts; the behaviour card's inputs (also in this form) are behaviour.js's.
const fields = [...document.getElementById("config-card").querySelectorAll("input[name], textarea[name]")];
const saveButton = document.getElementById("config-save");
const marker = document.getElementById("unsaved-marker");
const configStatus = document.getElementById("config-status");
const configError = document.getElementById("config-error");
const saveBar = document.getElementById("save-bar");
let saved = Object.fromEntries(fields.map((f) => [f.name, f.value]));
let leaving = false;

const dirtyFields = () => fields.filter((f) => f.value !== saved[f.name]);
const behaviour = initBehaviour({ base, onChange: () => updateDirty() });
const isDirty = () => !leaving && (dirtyFields().length > 0 || behaviour.isDirty());

function updateCounter(field) {
  const counter = form.querySelector(`[data-counter-for="${field.id}"]`);
  const limit = Number(field.dataset.limit);
  const length = field.value.length;
  if (counter) {
    counter.textContent = `${length.toLocaleString("en-US")} / ${limit.toLocaleString("en-US")}`;
    counter.classList.toggle("counter-near", length > limit * 0.9);
    counter.classList.toggle("counter-over", length > limit);
  }
}

// Save is aria-disabled rather than disabled while there is nothing to save, so that focus stays
// on it after saving instead of falling back to the page.
function updateDirty() {
  const dirty = isDirty();
  marker.hidden = !dirty;
  saveBar.dataset.dirty = dirty ? "true" : "false";
  saveButton.setAttribute("aria-disabled", dirty ? "false" : "true");
  if (dirty) say(configStatus, "");
}

function tooLong(field) {
  const limit = Number(field.dataset.limit);
  const length = field.value.length;
  return length > limit
    ? `At most ${limit.toLocaleString("en-US")} characters (now ${length.toLocaleString("en-US")}).`
    : "";
}

for (const field of fields) {
  updateCounter(field);
  if (field.dataset.grow !== undefined) autoGrow(field);
  field.addEventListener("input", () => {
    updateCounter(field);
    if (field.dataset.grow !== undefined) autoGrow(field);
    fieldError(field, tooLong(field)); // a long paste is kept whole and said to be too long
    updateDirty();
  });
}

// A change saved elsewhere (another tab, the API) shows up in fields that have no edits here.
onLiveUpdate((doc) => {
  let changedUnderEdits = false;
  for (const field of fields) {
    const fresh = doc.getElementById(field.id);
    if (!fresh) continue;
    const value = fresh.value;
    if (value === saved[field.name]) continue;
    if (field.value === saved[field.name]) {
      field.value = value;
      updateCounter(field);
      if (field.dataset.grow !== undefined) autoGrow(field);
    } else {
      changedUnderEdits = true;
    }
    saved[field.name] = value;
  }
  updateDirty();
  if (changedUnderEdits) {
    say(configStatus, "This configuration was also changed elsewhere; Save keeps your edits.");
  }
  const freshRemove = doc.getElementById("remove-server");
  if (freshRemove) document.getElementById("remove-server").dataset.name = freshRemove.dataset.name;
});

window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (saveButton.textContent === "Saving…") return;
  clearErrors(form);
  const changed = dirtyFields();
  if (!changed.length && !behaviour.isDirty()) return;
  const body = {};
  for (const field of changed) {
    if (tooLong(field)) {
      fieldError(field, tooLong(field));
      field.focus();
      return;
    }
    if (field.name === "botName" && !field.value.trim()) {
      fieldError(field, "The bot needs a name.");
      field.focus();
      return;
    }
    body[field.name] = field.name === "botName" ? field.value.trim() : field.value;
  }
  if (!behaviour.validate()) return;
  Object.assign(body, behaviour.body());
  saveButton.setAttribute("aria-disabled", "true");
  saveButton.textContent = "Saving…";
  try {
    const config = await api(base, { method: "PUT", body });
    for (const field of fields) {
      if (field.name in config && typeof config[field.name] === "string" && field.name in body) {
        field.value = config[field.name];
        updateCounter(field);
      }
    }
    saved = Object.fromEntries(fields.map((f) => [f.name, f.value]));
    behaviour.markSaved(config);
    say(configStatus, "Saved. The bot uses the new configuration within a second.", "success");
  } catch (error) {
    const shown = behaviour.showError(error, configError) ||
      (error.code === "VALIDATION_ERROR" && showFieldErrors(form, error));
    if (!shown) {
      configError.textContent = error.message;
      configError.hidden = false;
    }
  } finally {
    saveButton.textContent = "Save";
    updateDirty();
  }
});

// ------------------------------------------------------------------ websites

const websitesLive = document.getElementById("websites-live");
const websiteForm = document.getElementById("website-form");
const websiteStatus = document.getElementById("website-status");
let pollTimer = null;
let previous = snapshot();

function snapshot() {
  const rows = {};
  websitesLive.querySelectorAll("[data-website-id]").forEach((row) => {
    rows[row.dataset.websiteId] = {
      busy: ["queued", "running"].includes(row.dataset.scrapeStatus),
      last: row.dataset.lastScraped,
      name: row.querySelector(".website-name").textContent,
      failed: row.querySelector(".status-error") !== null,
      error: (row.querySelector(".error-text") || {}).textContent || "",
    };
  });
  return rows;
}

// Websites whose scrape was asked for here: id → their "last scraped" before the request, so the
// result is announced even when the scrape finished before the next refresh.
const pending = new Map();

// Fast polling while scrapes run, for at most a minute after the last request (then the regular
// live refresh carries on, e.g. when no scraper runs in this deployment).
let fastUntil = Date.now() + 60000;

function schedulePoll({ restart = false } = {}) {
  clearTimeout(pollTimer);
  if (restart) fastUntil = Date.now() + 60000;
  const busy = Object.values(snapshot()).some((r) => r.busy) || pending.size > 0;
  if (busy && Date.now() < fastUntil) pollTimer = setTimeout(() => refreshNow(), 1500);
}

function announce(row) {
  say(websiteStatus, row.failed ? `${row.name}: scrape failed — ${row.error}` : `${row.name} was scraped.`, row.failed ? "error" : "success");
}

onLiveUpdate(() => {
  const now = snapshot();
  for (const [id, row] of Object.entries(now)) {
    if (pending.has(id)) {
      if (!row.busy && row.last && row.last !== pending.get(id)) {
        pending.delete(id);
        announce(row);
      }
    } else if (previous[id] && previous[id].busy && !row.busy) {
      announce(row);
    }
  }
  for (const id of [...pending.keys()]) if (!(id in now)) pending.delete(id);
  previous = now;
  schedulePoll();
  updateActionsEmpty();
});

websiteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(websiteForm);
  const url = websiteForm.querySelector("#website-url");
  const name = websiteForm.querySelector("#website-name");
  const value = url.value.trim();
  if (!value) {
    fieldError(url, "Enter the address of a web page.");
    url.focus();
    return;
  }
  if (!/^https?:\/\//i.test(value)) {
    fieldError(url, "Use an address starting with http:// or https://.");
    url.focus();
    return;
  }
  const submit = websiteForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const body = { url: value };
    if (name.value.trim()) body.name = name.value.trim();
    const site = await api(`${base}/websites`, { method: "POST", body });
    pending.set(site.id, "");
    url.value = "";
    name.value = "";
    say(websiteStatus, `Added ${site.name || new URL(site.url).host}; scraping it now…`, "success");
    await refreshNow();
    schedulePoll({ restart: true });
  } catch (error) {
    if (["INVALID_URL", "WEBSITE_ALREADY_ADDED"].includes(error.code)) {
      fieldError(url, error.message);
      url.focus();
    } else if (!(error.code === "VALIDATION_ERROR" && showFieldErrors(websiteForm, error))) {
      say(websiteStatus, error.message, "error");
    }
  } finally {
    submit.disabled = false;
  }
});

websitesLive.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const row = button.closest("[data-website-id]");
  const id = row.dataset.websiteId;
  const rowStatus = row.querySelector("[data-row-status]");
  if (button.dataset.action === "rescrape") {
    button.disabled = true;
    button.textContent = "Scraping…";
    try {
      const before = row.dataset.lastScraped;
      await api(`${base}/websites/${encodeURIComponent(id)}/scrape`, { method: "POST" });
      pending.set(id, before);
      await refreshNow();
      schedulePoll({ restart: true });
    } catch (error) {
      button.disabled = false;
      button.textContent = "Rescrape";
      say(rowStatus, error.message, "error");
    }
  } else if (button.dataset.action === "remove-website") {
    const ok = await confirmAction({
      title: "Remove this website?",
      message: `${button.dataset.name} and its scraped content are removed; the bot stops using it.`,
      confirmLabel: "Remove website",
    });
    if (!ok) return;
    try {
      await api(`${base}/websites/${encodeURIComponent(id)}`, { method: "DELETE" });
      say(websiteStatus, `Removed ${button.dataset.name}.`, "success");
      await refreshNow();
      previous = snapshot();
      websiteForm.querySelector("#website-url").focus();
    } catch (error) {
      say(rowStatus, error.message, "error");
    }
  }
});

schedulePoll();

// ------------------------------------------------------------------ agent actions

const actionList = document.getElementById("action-list");
const loadMore = document.getElementById("load-more");
const actionsStatus = document.getElementById("actions-status");

function updateActionsEmpty() {
  document.getElementById("actions-empty").hidden = actionList.children.length > 0;
}

actionList.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest(".action-item");
  if (button.dataset.action === "expand") {
    const list = item.querySelector(".preceding");
    const open = list.dataset.expanded !== "true";
    list.dataset.expanded = open ? "true" : "false";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    const count = list.children.length;
    button.textContent = open ? "Show fewer" : `Show all ${count} earlier message${count === 1 ? "" : "s"}`;
  } else if (button.dataset.action === "copy-markdown") {
    const status = item.querySelector("[data-copy-status]");
    try {
      await copyText(button.dataset.markdown);
      say(status, "Copied.", "success");
    } catch {
      say(status, "Copying was refused by the browser; select the text instead.", "error");
    }
  }
});

loadMore.addEventListener("click", async () => {
  const cursor = actionList.dataset.nextCursor;
  if (!cursor) return;
  loadMore.disabled = true;
  say(actionsStatus, "Loading…");
  try {
    const doc = await fetchPage(`?actionsBefore=${encodeURIComponent(cursor)}`);
    const fresh = doc.getElementById("action-list");
    const known = new Set([...actionList.children].map((c) => c.dataset.key));
    let added = 0;
    for (const child of [...fresh.children]) {
      if (!known.has(child.dataset.key)) {
        actionList.append(document.importNode(child, true));
        added += 1;
      }
    }
    actionList.dataset.nextCursor = fresh.dataset.nextCursor || "";
    loadMore.hidden = !actionList.dataset.nextCursor;
    fixImages(actionList);
    refreshTimes(actionList);
    say(actionsStatus, added ? `${added} more loaded.` : "No more actions.");
  } catch (error) {
    say(actionsStatus, error.message, "error");
  } finally {
    loadMore.disabled = false;
  }
});

// The filter (All / Posted / Not posted) is the page's ?actions=, kept in the address; live
// refreshes and "Load more" read the filtered page.
const actionsFilter = document.getElementById("actions-filter");
let filterRequest = 0;

actionsFilter.addEventListener("change", async (event) => {
  const value = event.target.value;
  const query = value === "all" ? "" : `?actions=${encodeURIComponent(value)}`;
  document.body.dataset.liveSrc = window.location.pathname + query;
  window.history.replaceState(null, "", window.location.pathname + query + window.location.hash);
  const request = ++filterRequest;
  say(actionsStatus, "Loading…");
  try {
    const doc = await fetchPage();
    if (request !== filterRequest) return; // another choice was made meanwhile
    const fresh = doc.getElementById("action-list");
    actionList.replaceChildren(...[...fresh.children].map((child) => document.importNode(child, true)));
    actionList.dataset.nextCursor = fresh.dataset.nextCursor || "";
    loadMore.hidden = !actionList.dataset.nextCursor;
    document.getElementById("actions-empty").textContent = doc.getElementById("actions-empty").textContent;
    updateActionsEmpty();
    fixImages(actionList);
    refreshTimes(actionList);
    const label = event.target.labels[0].textContent;
    say(actionsStatus, value === "all" ? "" : `Showing: ${label}.`);
  } catch (error) {
    if (request === filterRequest) say(actionsStatus, error.message, "error");
  }
});

// ------------------------------------------------------------------ danger zone

const removeButton = document.getElementById("remove-server");
removeButton.addEventListener("click", async () => {
  const ok = await confirmAction({
    title: `Remove ${removeButton.dataset.name}?`,
    message: "Its configuration, websites, stats and agent actions are deleted. The bot leaves the conversation there within a second. This cannot be undone.",
    confirmLabel: "Remove server",
  });
  if (!ok) return;
  const status = document.getElementById("remove-status");
  removeButton.disabled = true;
  try {
    await api(base, { method: "DELETE" });
    leaving = true;
    flashAfterReload(`${removeButton.dataset.name} was removed.`);
    window.location.assign("/dashboard");
  } catch (error) {
    removeButton.disabled = false;
    say(status, error.message, "error");
  }
});
