// The /chat page (web-ui.md § /chat): chats grouped by server, 1/3/5 panes each with its own
// WebSocket (api.md § Chat), personas, send to all, load earlier, reconnect with backoff.
import {
  REFRESH_MS, api, confirmAction, relativeTime, say, serverState, switchedMessage,
} from "/static/js/common.js";

const DATA = JSON.parse(document.getElementById("chat-data").textContent);
const SERVERS = new Map(DATA.servers.map((s) => [s.id, s]));
const OWN_COLOR = "#b5bac1";
const BOT_COLOR = "#9aa8ff";
const FATAL_CLOSES = { 4401: "Your session has ended; sign in again.", 4404: "This chat no longer exists.", 4410: "This chat's server is no longer configured; the chat is read-only." };
const MAX_ATTEMPTS = 6;
const MAX_LENGTH = 4000;
const PANE_BACKGROUND = "#2b2d31"; // --panel in neonrain.css

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") { // through the CSSOM: the page's CSP refuses style attributes
      for (const [property, v] of Object.entries(value)) node.style.setProperty(property, v);
    } else if (key in node && !key.startsWith("aria")) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

const state = {
  groups: [],
  personas: [],
  group: null, // the open group (detail)
  panes: [],
  activePane: 0,
};

// ------------------------------------------------------------------ personas

function luminance(hex) {
  const channel = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

/** `hex`, lightened until it reads as text on the pane (4.5:1): a dark custom colour stays the
 *  persona's hue without making its name unreadable. The palette already meets the ratio. */
function readable(hex) {
  if (!/^#[0-9a-f]{6}$/i.test(hex)) return OWN_COLOR;
  const background = luminance(PANE_BACKGROUND);
  let color = hex.toLowerCase();
  for (let step = 0; step < 20 && (luminance(color) + 0.05) / (background + 0.05) < 4.5; step += 1) {
    color = `#${[1, 3, 5].map((i) => {
      const c = parseInt(color.slice(i, i + 2), 16);
      return Math.round(c + (255 - c) * 0.15).toString(16).padStart(2, "0");
    }).join("")}`;
  }
  return color;
}

function personaColor(name) {
  if (!name) return OWN_COLOR;
  const persona = state.personas.find((p) => p.nickname === name);
  return persona ? readable(persona.color) : OWN_COLOR;
}

async function loadPersonas() {
  try {
    state.personas = (await api("/api/chat/personas")).personas;
  } catch (error) {
    say(null, error.message, "error");
  }
  renderPersonaList();
  state.panes.forEach((pane) => pane.renderChip());
}

function renderPersonaList() {
  const list = $("persona-list");
  list.replaceChildren(
    ...state.personas.map((p) => el("li", { className: "persona-item" },
      el("span", { className: "persona-dot", style: { "--dot": p.color } }),
      el("span", { className: "persona-name" }, p.nickname),
      el("button", { type: "button", className: "button button-danger-quiet button-small", dataset: { deletePersona: p.id } }, "Delete"),
    )),
  );
  if (!state.personas.length) list.append(el("li", { className: "muted small" }, "No personas yet."));
}

function openPersonaDialog() {
  const dialog = $("persona-dialog");
  say($("persona-status"), "");
  renderPersonaList();
  dialog.showModal();
  $("persona-nickname").focus();
}

function bindPersonaDialog() {
  const dialog = $("persona-dialog");
  dialog.querySelectorAll("[data-swatch]").forEach((swatch) => swatch.style.setProperty("--swatch", swatch.dataset.swatch));
  closeOnBackdrop(dialog);
  $("manage-personas").addEventListener("click", openPersonaDialog);
  $("persona-close").addEventListener("click", () => dialog.close());
  $("persona-custom").addEventListener("input", () => {
    dialog.querySelectorAll("input[name=color]").forEach((r) => { r.checked = false; });
  });
  $("persona-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("persona-nickname");
    const nickname = input.value.trim();
    const error = $("persona-nickname-error");
    error.hidden = true;
    if (!nickname) {
      error.textContent = "Give the persona a nickname (1–32 characters).";
      error.hidden = false;
      input.focus();
      return;
    }
    const checked = dialog.querySelector("input[name=color]:checked");
    const color = checked ? checked.value : $("persona-custom").value;
    try {
      const persona = await api("/api/chat/personas", { method: "POST", body: { nickname, color } });
      input.value = "";
      await loadPersonas();
      say($("persona-status"), `${persona.nickname} can now speak in your chats.`, "success");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  $("persona-list").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-delete-persona]");
    if (!button) return;
    const persona = state.personas.find((p) => p.id === button.dataset.deletePersona);
    if (!persona) return;
    dialog.close();
    const ok = await confirmAction({ title: `Delete ${persona.nickname}?`, message: "Messages already sent keep this name.", confirmLabel: "Delete persona" });
    if (ok) {
      try {
        await api(`/api/chat/personas/${encodeURIComponent(persona.id)}`, { method: "DELETE" });
        say(null, `${persona.nickname} was deleted.`, "success");
      } catch (err) {
        say(null, err.message, "error");
      }
      await loadPersonas();
    }
    openPersonaDialog();
  });
}

// The chosen speaker of each conversation survives a reload.
function readSpeaker(conversationId) {
  try { return localStorage.getItem(`neonrain.chat.speaker.${conversationId}`) || ""; } catch { return ""; }
}

function writeSpeaker(conversationId, nickname) {
  try {
    if (nickname) localStorage.setItem(`neonrain.chat.speaker.${conversationId}`, nickname);
    else localStorage.removeItem(`neonrain.chat.speaker.${conversationId}`);
  } catch { /* private mode */ }
}

// ------------------------------------------------------------------ a pane

class Pane {
  constructor(conversation, index, total) {
    this.id = conversation.id;
    this.index = index;
    this.label = total > 1 ? `Pane ${index + 1}` : "Conversation";
    this.messages = [];
    this.hasMore = conversation.hasMore;
    this.ws = null;
    this.ready = false;
    this.closed = false;
    this.attempts = 0;
    this.timer = null;
    this.pendingText = null;
    this.botName = SERVERS.get(state.group.serverId)?.botName || "The agent";
    this.build();
    conversation.messages.forEach((m) => this.add(m));
    this.updateLoadEarlier();
    this.scrollToEnd();
  }

  build() {
    const id = `pane-${this.index}`;
    this.stateEl = el("span", { className: "conn-state", dataset: { state: "connecting" } }, "Connecting…");
    this.retry = el("button", { type: "button", className: "button button-quiet button-small", hidden: true }, "Retry");
    this.retry.addEventListener("click", () => { this.attempts = 0; this.connect(); });
    this.loadEarlier = el("button", { type: "button", className: "link-button load-earlier", hidden: true }, "Load earlier messages");
    this.loadEarlier.addEventListener("click", () => this.older());
    this.list = el("ol", { className: "message-list" });
    this.scroller = el("div", { className: "messages", role: "log", "aria-live": "polite", "aria-label": `${this.label} messages`, tabIndex: 0 }, this.loadEarlier, this.list);
    this.typingText = el("span", {}, "");
    this.stop = el("button", { type: "button", className: "button button-quiet button-small" }, "Stop");
    this.stop.addEventListener("click", () => this.send("chat:cancel", {}));
    this.typing = el("div", { className: "typing", hidden: true }, el("span", { className: "typing-dots", "aria-hidden": "true" }, "•••"), this.typingText, this.stop);
    this.chip = el("select", { className: "persona-chip", "aria-label": `Who speaks in ${this.label}` });
    this.chip.addEventListener("change", () => this.onChip());
    // No maxlength: a long paste is kept whole and the pane says it is too long.
    this.input = el("textarea", { rows: 1, placeholder: "Message…", "aria-label": `Message for ${this.label}` });
    this.input.addEventListener("input", () => {
      const length = this.input.value.trim().length;
      if (length > MAX_LENGTH) this.showError(tooLongMessage(length));
      else if (this.errorEl.textContent.startsWith("A message can have")) this.showError("");
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.sendButton = el("button", { type: "submit", className: "button" }, "Send");
    this.form = el("form", { className: "composer" }, this.chip, el("div", { className: "composer-row" }, this.input, this.sendButton));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = this.sendText(this.input.value);
      if (result !== true) this.showError(result);
    });
    this.errorEl = el("p", { className: "pane-error small", role: "status", hidden: true, id: `${id}-error` });
    this.input.setAttribute("aria-describedby", this.errorEl.id);
    this.root = el("section", { className: "pane", id, role: "tabpanel", "aria-label": this.label, dataset: { paneIndex: String(this.index) } },
      el("header", { className: "pane-head" }, el("h2", { className: "pane-title" }, this.label), this.stateEl, this.retry),
      this.scroller, this.typing, this.form, this.errorEl);
    this.renderChip();
  }

  renderChip() {
    const current = this.chip.value;
    this.chip.replaceChildren(
      el("option", { value: "" }, DATA.userName),
      ...state.personas.map((p) => el("option", { value: p.nickname }, p.nickname)),
      el("option", { value: "__new__" }, "New persona…"),
    );
    const remembered = current || readSpeaker(this.id);
    this.chip.value = state.personas.some((p) => p.nickname === remembered) ? remembered : "";
    this.chip.style.setProperty("--chip", personaColor(this.chip.value));
  }

  onChip() {
    if (this.chip.value === "__new__") {
      this.chip.value = "";
      openPersonaDialog();
    }
    writeSpeaker(this.id, this.chip.value);
    this.chip.style.setProperty("--chip", personaColor(this.chip.value));
  }

  // -- connection

  connect() {
    if (this.closed || this.readOnly) return;
    clearTimeout(this.timer);
    this.setState("connecting", this.attempts ? "Reconnecting…" : "Connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/chat/${encodeURIComponent(this.id)}`);
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      this.onFrame(frame.type, frame.data || {});
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ready = false;
      this.ws = null;
      this.showTyping(false);
      updateSendAll();
      if (this.closed) return;
      if (event.code === 4410) {
        serverRemoved(state.group && state.group.serverId);
        return;
      }
      if (FATAL_CLOSES[event.code]) {
        this.setState("error", FATAL_CLOSES[event.code]);
        return;
      }
      this.attempts += 1;
      if (this.attempts > MAX_ATTEMPTS) {
        this.setState("error", "Disconnected.", { retry: true });
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** (this.attempts - 1)) * (0.8 + Math.random() * 0.2);
      this.setState("reconnecting", `Reconnecting in ${Math.round(delay / 1000)} s…`, { retry: true });
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  /** `retry`: offer the Retry button (only where trying again can help). */
  setState(kind, text, { retry = false } = {}) {
    this.stateEl.dataset.state = kind;
    this.stateEl.textContent = text;
    this.retry.hidden = !retry;
    this.root.dataset.state = kind;
  }

  setReadOnly() {
    this.readOnly = true;
    clearTimeout(this.timer);
    this.input.disabled = true;
    this.sendButton.disabled = true;
    this.chip.disabled = true;
    this.input.placeholder = "Read-only: this server is no longer configured.";
    this.setState("error", FATAL_CLOSES[4410]);
    this.showTyping(false);
  }

  async onFrame(type, data) {
    if (type === "chat:ready") {
      const reconnect = this.attempts > 0 || this.messages.length > 0;
      this.ready = true;
      this.attempts = 0;
      this.botName = data.botName || this.botName;
      this.setState("connected", "Connected");
      updateSendAll();
      if (reconnect) await this.catchUp();
    } else if (type === "chat:message") {
      this.add(data);
      if (data.role === "assistant") this.showTyping(false);
      if (data.role === "user" && this.pendingText !== null && data.content === this.pendingText.trim()) {
        if (this.input.value === this.pendingText) this.input.value = "";
        this.pendingText = null;
        this.showError("");
      }
      this.scrollToEnd();
      touchGroup(state.group.id);
    } else if (type === "chat:typing") {
      this.showTyping(Boolean(data.isTyping));
    } else if (type === "chat:title-updated") {
      setGroupTitle(state.group.id, data.title);
    } else if (type === "chat:error") {
      if (["INVALID_MESSAGE", "RATE_LIMITED", "NO_SERVER_CONFIG"].includes(data.code)) this.pendingText = null;
      this.showError(data.message || "Something went wrong.");
      if (data.code === "NO_SERVER_CONFIG") serverRemoved(state.group && state.group.serverId);
    }
  }

  /** After a reconnect: the messages stored while the socket was down. */
  async catchUp() {
    try {
      const page = await api(`/api/chat/conversations/${encodeURIComponent(this.id)}/messages?limit=100`);
      page.messages.forEach((m) => this.add(m));
      this.scrollToEnd();
    } catch (error) {
      this.showError(error.message);
    }
  }

  send(type, data) {
    if (!this.ws || !this.ready) return false;
    this.ws.send(JSON.stringify({ type, data }));
    return true;
  }

  /** Sends `text`; returns true, or why it was not sent (the input keeps its text). */
  sendText(text) {
    const content = text.trim();
    if (!content) return "Type a message first.";
    if (content.length > MAX_LENGTH) return tooLongMessage(content.length);
    if (this.input.disabled) return "This chat is read-only.";
    const speaker = this.chip.value && this.chip.value !== "__new__" ? this.chip.value : undefined;
    if (!this.send("chat:message", speaker ? { content, senderName: speaker } : { content })) {
      return "Not connected; your text is kept. Try again when the pane is connected.";
    }
    if (text === this.input.value) this.pendingText = text;
    return true;
  }

  showError(message) {
    say(this.errorEl, message, "error");
  }

  showTyping(on) {
    this.typingText.textContent = ` ${this.botName} is typing…`;
    this.typing.hidden = !on;
    if (on) this.scrollToEnd();
  }

  // -- messages

  render(message) {
    const author = message.role === "assistant" ? (message.senderName || this.botName) : (message.senderName || DATA.userName);
    const color = message.role === "assistant" ? BOT_COLOR : personaColor(message.senderName);
    const body = el("div", { className: "message-body" });
    if (message.role === "assistant" && message.contentHtml !== null && message.contentHtml !== undefined) {
      body.innerHTML = message.contentHtml; // sanitized server-side (nh3)
    } else {
      body.classList.add("plain");
      body.textContent = message.content;
    }
    const time = el("time", { dateTime: message.createdAt, title: new Date(message.createdAt).toLocaleString() },
      new Date(message.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    return el("li", { className: `message message-${message.role}`, dataset: { id: message.id } },
      el("div", { className: "message-meta" }, el("span", { className: "message-author", style: { color } }, author), time),
      body);
  }

  add(message) {
    if (this.messages.some((m) => m.id === message.id)) return;
    const index = this.messages.findIndex((m) => m.createdAt > message.createdAt);
    const node = this.render(message);
    if (index === -1) {
      this.messages.push(message);
      this.list.append(node);
    } else {
      this.list.insertBefore(node, this.list.children[index]);
      this.messages.splice(index, 0, message);
    }
  }

  async older() {
    if (!this.messages.length) return;
    this.loadEarlier.disabled = true;
    const height = this.scroller.scrollHeight;
    try {
      const page = await api(`/api/chat/conversations/${encodeURIComponent(this.id)}/messages?before=${encodeURIComponent(this.messages[0].id)}`);
      page.messages.forEach((m) => this.add(m));
      this.hasMore = page.hasMore;
      this.scroller.scrollTop += this.scroller.scrollHeight - height;
    } catch (error) {
      this.showError(error.message);
    } finally {
      this.loadEarlier.disabled = false;
      this.updateLoadEarlier();
    }
  }

  updateLoadEarlier() { this.loadEarlier.hidden = !this.hasMore; }

  scrollToEnd() { this.scroller.scrollTop = this.scroller.scrollHeight; }
}

function tooLongMessage(length) {
  return `A message can have at most ${MAX_LENGTH.toLocaleString("en-US")} characters; this one has ${length.toLocaleString("en-US")}. Shorten it to send.`;
}

// ------------------------------------------------------------------ the open chat

function closePanes() {
  state.panes.forEach((p) => p.close());
  state.panes = [];
  $("panes").replaceChildren();
  $("pane-tabs").replaceChildren();
}

async function openGroup(groupId, { push = true } = {}) {
  let group;
  try {
    group = await api(`/api/chat/groups/${encodeURIComponent(groupId)}`);
  } catch (error) {
    say(null, error.status === 404 ? "That chat was not found." : error.message, "error");
    return false;
  }
  closePanes();
  state.group = group;
  if (push) history.pushState({ group: group.id }, "", `/chat?group=${encodeURIComponent(group.id)}`);
  $("chat-empty").hidden = true;
  say($("chat-status"), ""); // a notice about the previous chat is not about this one
  renderHeader();
  const panes = $("panes");
  panes.dataset.count = String(group.paneCount);
  state.panes = group.conversations.map((c, i) => new Pane(c, i, group.conversations.length));
  state.panes.forEach((p) => panes.append(p.root));
  renderTabs();
  selectPane(0);
  $("send-all").hidden = group.conversations.length < 2 || Boolean(group.readOnly);
  if (group.readOnly) state.panes.forEach((p) => p.setReadOnly());
  else state.panes.forEach((p) => p.connect());
  updateSendAll();
  renderList();
  collapseSidebar();
  return true;
}

/** Where a newly opened chat takes the keyboard: the input of its first (visible) pane. */
function focusActivePane() {
  const pane = state.panes[state.activePane];
  if (!pane) return;
  (pane.input.disabled ? pane.scroller : pane.input).focus();
}

function renderHeader() {
  const group = state.group;
  $("chat-title").textContent = group.title;
  const server = SERVERS.get(group.serverId);
  const where = group.serverName || "a removed server";
  $("chat-subtitle").textContent = group.readOnly
    ? `${where} · read-only: this server is no longer configured`
    : `${where} · ${server ? server.botName : "agent"} · ${group.paneCount} pane${group.paneCount === 1 ? "" : "s"}`;
  $("activate-bot").hidden = !(server && !server.botActive && !group.readOnly);
  if (server) $("activate-bot").textContent = `Activate bot in ${server.name}`;
  renderReadiness(group.readOnly ? null : server);
  $("send-all").hidden = state.panes.length < 2 || Boolean(group.readOnly);
}

/** Whether the server's Discord bot answers, and if not why: the activation prompt never
 *  promises answers the bot cannot give. */
function renderReadiness(server) {
  const note = $("chat-readiness");
  const blocker = server && server.readiness
    ? server.readiness.checks.find((c) => c.state === "problem" && c.id !== "active")
    : null;
  let text = "";
  if (server && !server.botActive && blocker) {
    text = `The bot is off in ${server.name} on Discord, and switching it on will not make it answer there yet: ${blocker.message}`;
  } else if (server && server.botActive && serverState(server).kind === "not_answering") {
    text = `The bot is on in ${server.name} but not answering on Discord: ${serverState(server).reason}`;
  }
  note.textContent = text;
  note.hidden = !text;
}

/** The chat's server configuration is gone (removed here, elsewhere, or found out by a pane). */
function serverRemoved(serverId) {
  if (!serverId) return;
  SERVERS.delete(serverId);
  for (const select of [$("server-filter"), $("new-chat-server")]) {
    const option = [...select.options].find((o) => o.value === serverId);
    if (option && select.value !== serverId) option.remove();
  }
  for (const group of state.groups) if (group.serverId === serverId) group.readOnly = true;
  if (state.group && state.group.serverId === serverId && !state.group.readOnly) {
    state.group.readOnly = true;
    state.panes.forEach((p) => p.setReadOnly());
    say($("chat-status"), "");
    renderHeader();
    updateSendAll();
  }
  renderList();
}

/** Server names, bot names and on/off switches change on the dashboard too: follow them. */
async function refreshServers() {
  let body;
  try {
    body = await api("/api/servers");
  } catch {
    return; // the next round tries again; panes report their own connection problems
  }
  const seen = new Set();
  for (const config of body.servers) {
    seen.add(config.serverId);
    const known = SERVERS.get(config.serverId);
    if (known) {
      Object.assign(known, {
        name: config.guildName,
        botName: config.botName,
        botActive: config.botActive,
        readiness: config.readiness,
      });
    }
  }
  for (const id of [...SERVERS.keys()]) if (!seen.has(id)) serverRemoved(id);
  if (state.group && !state.group.readOnly) renderHeader();
}

function renderTabs() {
  const tabs = $("pane-tabs");
  tabs.hidden = state.panes.length < 2;
  tabs.replaceChildren(...state.panes.map((p, i) => {
    const tab = el("button", { type: "button", role: "tab", id: `tab-${i}`, "aria-controls": p.root.id, className: "pane-tab" }, String(i + 1));
    tab.setAttribute("aria-label", p.label);
    tab.addEventListener("click", () => selectPane(i));
    p.root.setAttribute("aria-labelledby", tab.id);
    return tab;
  }));
}

/** Arrow keys, Home and End move between the pane tabs (one tab stop for the whole list). */
function bindTabKeys() {
  $("pane-tabs").addEventListener("keydown", (event) => {
    const count = state.panes.length;
    if (!count || !event.target.closest("[role=tab]")) return;
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next;
    if (event.key in moves) next = (state.activePane + moves[event.key] + count) % count;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = count - 1;
    else return;
    event.preventDefault();
    selectPane(next);
    $(`tab-${next}`).focus();
  });
}

function selectPane(index) {
  state.activePane = index;
  state.panes.forEach((p, i) => p.root.classList.toggle("active", i === index));
  $("pane-tabs").querySelectorAll("[role=tab]").forEach((t, i) => {
    t.setAttribute("aria-selected", String(i === index));
    t.tabIndex = i === index ? 0 : -1;
  });
}

function updateSendAll() {
  const button = $("send-all").querySelector("button");
  button.disabled = !state.panes.some((p) => p.ready);
}

function bindSendAll() {
  const input = $("send-all-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("send-all").requestSubmit();
    }
  });
  $("send-all").addEventListener("submit", (event) => {
    event.preventDefault();
    const status = $("send-all-status");
    if (!input.value.trim()) { say(status, "Type a message first.", "error"); return; }
    if (input.value.trim().length > MAX_LENGTH) { say(status, tooLongMessage(input.value.trim().length), "error"); return; }
    const sent = [];
    const skipped = [];
    for (const pane of state.panes) {
      const result = pane.sendText(input.value);
      if (result === true) sent.push(pane.index + 1);
      else skipped.push(pane.index + 1);
    }
    if (!sent.length) {
      say(status, "No pane is connected; nothing was sent and your text is kept.", "error");
      return;
    }
    input.value = "";
    say(status, skipped.length
      ? `Sent to pane${sent.length > 1 ? "s" : ""} ${sent.join(", ")}; skipped pane${skipped.length > 1 ? "s" : ""} ${skipped.join(", ")} (not connected).`
      : `Sent to all ${sent.length} panes.`, skipped.length ? "error" : "success");
  });
}

function bindActivate() {
  $("activate-bot").addEventListener("click", async () => {
    const button = $("activate-bot");
    const server = SERVERS.get(state.group && state.group.serverId);
    if (!server) return;
    button.disabled = true;
    try {
      const config = await api(`/api/servers/${encodeURIComponent(server.id)}`, { method: "PUT", body: { botActive: true } });
      server.botActive = config.botActive;
      server.readiness = config.readiness;
      if (state.group && state.group.serverId === server.id) {
        const answering = serverState(config).kind !== "not_answering" && config.botActive;
        say($("chat-status"), config.botActive ? switchedMessage(config) : "The bot is still off.", answering ? "success" : "error");
        renderHeader();
        focusActivePane(); // the button is gone: on to the conversation
      }
    } catch (error) {
      if (error.status === 404) serverRemoved(server.id);
      else say($("chat-status"), error.message, "error");
    } finally {
      button.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ sidebar

async function loadGroups() {
  const filter = $("server-filter").value;
  const status = $("sidebar-status");
  try {
    const query = filter ? `?serverId=${encodeURIComponent(filter)}` : "";
    state.groups = (await api(`/api/chat/groups${query}`)).groups;
    // Clear only this list's own earlier failure, not e.g. "Chat deleted." said a moment ago.
    if (status.dataset.source === "load") { say(status, ""); delete status.dataset.source; }
  } catch (error) {
    say(status, error.message, "error");
    status.dataset.source = "load";
  }
  renderList();
}

function touchGroup(groupId) {
  const group = state.groups.find((g) => g.id === groupId);
  if (!group) return;
  group.updatedAt = new Date().toISOString();
  state.groups = [group, ...state.groups.filter((g) => g !== group)];
  renderList();
}

function setGroupTitle(groupId, title) {
  const group = state.groups.find((g) => g.id === groupId);
  if (group) group.title = title;
  if (state.group && state.group.id === groupId) {
    state.group.title = title;
    $("chat-title").textContent = title;
  }
  renderList();
}

function renderList() {
  const list = $("chat-list");
  // The list is rebuilt (new messages reorder it): keep the keyboard where it was.
  const focused = document.activeElement;
  const focusKey = focused && list.contains(focused) && focused.matches("a, button") && focused.closest("[data-group-id]")
    ? [focused.closest("[data-group-id]").dataset.groupId, focused.className] : null;
  renderListItems(list);
  if (focusKey) {
    const item = list.querySelector(`[data-group-id="${CSS.escape(focusKey[0])}"]`);
    const again = item && [...item.querySelectorAll("a, button")].find((e) => e.className === focusKey[1]);
    if (again) again.focus();
    else if (!focused.isConnected) (list.querySelector("a") || $("new-chat")).focus();
  }
}

function renderListItems(list) {
  const sections = new Map();
  for (const group of state.groups) {
    const key = group.serverId || "";
    if (!sections.has(key)) sections.set(key, { name: group.serverName || "Removed server", groups: [] });
    sections.get(key).groups.push(group);
  }
  if (!state.groups.length) {
    list.replaceChildren(el("p", { className: "muted small" }, $("server-filter").value ? "No chats on this server yet." : "No chats yet."));
    return;
  }
  list.replaceChildren(...[...sections.values()].map((section) => el("section", { className: "chat-server" },
    el("h2", { className: "chat-server-name" }, section.name),
    el("ul", {}, ...section.groups.map(renderItem)))));
}

function renderItem(group) {
  const current = state.group && state.group.id === group.id;
  const open = el("a", { href: `/chat?group=${encodeURIComponent(group.id)}`, className: "chat-item-link", dataset: { openGroup: group.id } },
    el("span", { className: "chat-item-title" }, group.title),
    el("span", { className: "chat-item-meta" },
      el("span", { className: "badge", title: `${group.paneCount} pane${group.paneCount === 1 ? "" : "s"}` }, `${group.paneCount}×`),
      group.readOnly ? el("span", { className: "badge badge-warn" }, "read-only") : null,
      el("time", { dateTime: group.updatedAt }, relativeTime(group.updatedAt))));
  if (current) open.setAttribute("aria-current", "page");
  const rename = el("button", { type: "button", className: "link-button small", dataset: { renameGroup: group.id } }, "Rename");
  const remove = el("button", { type: "button", className: "link-button small danger-link", dataset: { deleteGroup: group.id } }, "Delete");
  return el("li", { className: `chat-item${current ? " current" : ""}`, dataset: { groupId: group.id } }, open, el("div", { className: "chat-item-actions" }, rename, remove));
}

function startRename(item, group) {
  const input = el("input", { type: "text", value: group.title, maxLength: 100, "aria-label": "Chat title" });
  const link = item.querySelector(".chat-item-link");
  link.hidden = true;
  item.prepend(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    const refocus = () => {
      // The input is gone with the re-rendered list: back to the item's Rename button.
      const again = $("chat-list").querySelector(`[data-rename-group="${CSS.escape(group.id)}"]`);
      if (again && (document.activeElement === document.body || !document.activeElement)) again.focus();
    };
    if (save && title && title !== group.title) {
      try {
        const updated = await api(`/api/chat/groups/${encodeURIComponent(group.id)}`, { method: "PATCH", body: { title } });
        setGroupTitle(group.id, updated.title);
        say($("sidebar-status"), "Renamed.", "success");
        refocus();
        return;
      } catch (error) {
        say($("sidebar-status"), error.message, "error");
      }
    } else if (save && !title) {
      say($("sidebar-status"), "A title needs 1 to 100 characters.", "error");
    }
    renderList();
    refocus();
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); finish(true); }
    if (event.key === "Escape") { event.preventDefault(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
}

function bindSidebar() {
  $("server-filter").addEventListener("change", loadGroups);
  $("chat-list").addEventListener("click", async (event) => {
    const link = event.target.closest("[data-open-group]");
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      openGroup(link.dataset.openGroup);
      return;
    }
    const renameButton = event.target.closest("[data-rename-group]");
    if (renameButton) {
      const group = state.groups.find((g) => g.id === renameButton.dataset.renameGroup);
      if (group) startRename(renameButton.closest("li"), group);
      return;
    }
    const deleteButton = event.target.closest("[data-delete-group]");
    if (deleteButton) {
      const group = state.groups.find((g) => g.id === deleteButton.dataset.deleteGroup);
      if (!group) return;
      const ok = await confirmAction({ title: `Delete “${group.title}”?`, message: "Its conversations and messages are deleted for good.", confirmLabel: "Delete chat" });
      if (!ok) return;
      try {
        await api(`/api/chat/groups/${encodeURIComponent(group.id)}`, { method: "DELETE" });
        if (state.group && state.group.id === group.id) {
          closePanes();
          state.group = null;
          $("chat-title").textContent = "Chat";
          $("chat-subtitle").textContent = "";
          $("activate-bot").hidden = true;
          renderReadiness(null);
          $("send-all").hidden = true;
          $("chat-empty").hidden = false;
          say($("chat-status"), "");
          history.pushState({}, "", "/chat");
        }
        say($("sidebar-status"), `Chat “${group.title}” deleted.`, "success");
        await loadGroups();
        if (!document.activeElement || document.activeElement === document.body) {
          ($("chat-list").querySelector("a") || $("new-chat")).focus();
        }
      } catch (error) {
        say($("sidebar-status"), error.message, "error");
      }
    }
  });
  const toggle = $("sidebar-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    $("chat-sidebar").classList.toggle("open", open);
  });
}

function collapseSidebar() {
  $("sidebar-toggle").setAttribute("aria-expanded", "false");
  $("chat-sidebar").classList.remove("open");
}

// ------------------------------------------------------------------ new chat dialog

function closeOnBackdrop(dialog) {
  dialog.addEventListener("click", (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside || event.clientX === 0) dialog.close();
  });
}

function bindNewChat() {
  const dialog = $("new-chat-dialog");
  const form = $("new-chat-form");
  closeOnBackdrop(dialog);
  const open = () => {
    $("new-chat-error").hidden = true;
    $("new-chat-server-error").hidden = true;
    const filter = $("server-filter").value;
    if (filter) $("new-chat-server").value = filter;
    dialog.showModal();
    $("new-chat-server").focus();
  };
  $("new-chat").addEventListener("click", open);
  document.querySelectorAll("[data-open-new-chat]").forEach((b) => b.addEventListener("click", open));
  $("new-chat-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const serverId = $("new-chat-server").value;
    if (!serverId) {
      const error = $("new-chat-server-error");
      error.textContent = DATA.servers.length ? "Choose the server whose agent you want to talk to." : "Add a server on the dashboard first.";
      error.hidden = false;
      $("new-chat-server").focus();
      return;
    }
    const paneCount = Number(form.querySelector("input[name=paneCount]:checked").value);
    const create = $("new-chat-create");
    create.disabled = true;
    try {
      const group = await api("/api/chat/groups", { method: "POST", body: { serverId, paneCount } });
      dialog.close();
      await loadGroups();
      if (await openGroup(group.id)) focusActivePane();
    } catch (error) {
      say($("new-chat-error"), error.message, "error");
    } finally {
      create.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ start

async function start() {
  bindSidebar();
  bindNewChat();
  bindPersonaDialog();
  bindSendAll();
  bindActivate();
  bindTabKeys();
  await Promise.all([loadPersonas(), loadGroups()]);
  const wanted = new URLSearchParams(location.search).get("group");
  let opened = false;
  if (wanted) opened = await openGroup(wanted, { push: false });
  else if (state.groups.length) opened = await openGroup(state.groups[0].id, { push: false });
  $("chat-loading").hidden = true;
  $("chat-empty").hidden = opened;
  setInterval(() => { if (document.visibilityState === "visible") refreshServers(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refreshServers(); });
  window.addEventListener("popstate", () => {
    const id = new URLSearchParams(location.search).get("group");
    if (id) openGroup(id, { push: false });
  });
  setInterval(() => document.querySelectorAll(".chat-item time").forEach((t) => { t.textContent = relativeTime(t.dateTime); }), 30000);
  document.body.dataset.chatReady = "true";
}

start();
