// "Where and when the bot speaks" on the server page: channel mode, the channel picker (loaded
// from /api/servers/:serverId/channels), reply mode and the two limits. It is part of the
// configuration form: server.js asks it whether it has changes, for them, and tells it when saved.
import { api, fieldError, onLiveUpdate } from "./common.js";

const KINDS = { announcement: "announcements", forum: "forum", voice: "voice", stage: "stage" };
const MODE_HINTS = {
  all: "The bot watches every channel it can read.",
  only: "The bot watches only the channels ticked below.",
  except: "The bot watches every channel it can read except those ticked below.",
};
const THREADS = " Threads and forum posts follow their channel.";
const LIMITS = ["maxRepliesPerHour", "minSecondsBetweenReplies"];

/** Why the bot cannot work in a channel (from the two permissions the API reports). */
function problemOf(channel) {
  if (!channel.botCanRead && !channel.botCanSend) {
    return "The bot cannot see this channel: it needs View Channel (and Read Message History, Send Messages).";
  }
  if (!channel.botCanRead) return "The bot cannot read here: it needs Read Message History.";
  if (!channel.botCanSend) return "The bot cannot answer here: it needs Send Messages.";
  return "";
}

const sameIds = (a, b) => a.length === b.length && a.every((id) => b.includes(id));
/** The saved values in one comparable string (the order of channel ids does not matter). */
const canonical = (v) => JSON.stringify([v.channelMode, [...v.channelIds].sort(), v.replyMode,
  Number(v.maxRepliesPerHour), Number(v.minSecondsBetweenReplies)]);

export function initBehaviour({ base, onChange }) {
  const card = document.getElementById("behaviour-card");
  const picker = document.getElementById("channel-picker");
  const groups = document.getElementById("channel-groups");
  const status = document.getElementById("channel-picker-status");
  const retry = document.getElementById("channel-retry");
  const warning = document.getElementById("channel-warning");
  const modeHint = document.getElementById("channel-mode-hint");
  const limitInputs = LIMITS.map((name) => document.getElementById(`cfg-${name}`));

  let saved = JSON.parse(card.dataset.saved);
  let selected = new Set(saved.channelIds);
  let channels = null; // the guild's channels once loaded

  const checked = (name) => (card.querySelector(`input[name="${name}"]:checked`) || {}).value;

  /** The selected ids: in the picker's order, then ids the guild no longer has. */
  function selectedIds() {
    const listed = (channels || []).map((c) => c.id).filter((id) => selected.has(id));
    return [...listed, ...[...selected].filter((id) => !listed.includes(id))];
  }

  function current() {
    return {
      channelMode: checked("channelMode"),
      channelIds: selectedIds(),
      replyMode: checked("replyMode"),
      maxRepliesPerHour: limitInputs[0].value.trim(),
      minSecondsBetweenReplies: limitInputs[1].value.trim(),
    };
  }

  /** The fields that differ from what is saved (limits as typed; see validate). */
  function changes() {
    const now = current();
    const out = {};
    if (now.channelMode !== saved.channelMode) out.channelMode = now.channelMode;
    if (!sameIds(now.channelIds, saved.channelIds)) out.channelIds = now.channelIds;
    if (now.replyMode !== saved.replyMode) out.replyMode = now.replyMode;
    for (const name of LIMITS) if (now[name] !== String(saved[name])) out[name] = now[name];
    return out;
  }

  function renderMode() {
    const mode = checked("channelMode");
    modeHint.textContent = MODE_HINTS[mode] + THREADS;
    picker.hidden = mode === "all";
    renderWarning();
  }

  function renderWarning() {
    const mode = checked("channelMode");
    let text = "";
    if (mode === "only" && selected.size === 0) {
      text = "No channel is ticked, so the bot watches nothing in this server. Tick the channels it should watch, or choose All channels.";
    } else if (mode === "except" && channels && channels.length && channels.every((c) => selected.has(c.id))) {
      text = "Every channel is left out, so the bot watches nothing in this server.";
    } else if (channels && mode !== "all") {
      const watched = channels.filter((c) => (mode === "only") === selected.has(c.id));
      if (watched.length && !watched.some((c) => c.botCanRead && c.botCanSend)) {
        text = "The bot can neither read nor answer in any of the channels it watches; check its permissions in Discord.";
      }
    }
    warning.textContent = text;
    warning.hidden = !text;
  }

  /** A checkbox for one channel id; `problem` says why the bot cannot work there. */
  function channelItem({ id, name, kind = "", problem = "" }) {
    const item = document.createElement("li");
    item.className = "channel-item";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `channel-${id}`;
    box.value = id;
    box.checked = selected.has(id);
    const label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = name;
    if (kind) {
      const note = document.createElement("span");
      note.className = "channel-kind";
      note.textContent = ` (${kind})`;
      label.append(note);
    }
    item.append(box, label);
    if (problem) {
      const why = document.createElement("span");
      why.className = "channel-problem";
      why.id = `${box.id}-why`;
      why.textContent = problem;
      box.setAttribute("aria-describedby", why.id);
      item.append(why);
    }
    return item;
  }

  const listedItem = (c) => channelItem({ id: c.id, name: `#${c.name}`, kind: KINDS[c.type] || "", problem: problemOf(c) });

  function group(title, items) {
    const set = document.createElement("fieldset");
    set.className = "channel-group";
    const legend = document.createElement("legend");
    legend.textContent = title;
    const list = document.createElement("ul");
    list.append(...items);
    set.append(legend, list);
    return set;
  }

  function renderChannels() {
    const parts = [];
    let category;
    let items = [];
    for (const channel of channels) {
      const name = channel.categoryName || "No category";
      if (name !== category && items.length) {
        parts.push(group(category, items));
        items = [];
      }
      category = name;
      items.push(listedItem(channel));
    }
    if (items.length) parts.push(group(category, items));
    const known = new Set(channels.map((c) => c.id));
    const gone = [...selected].filter((id) => !known.has(id));
    if (gone.length) {
      parts.push(group("No longer in the server", gone.map((id) => channelItem({
        id, name: `Channel ${id}`, problem: "It is no longer a channel of this server; untick it.",
      }))));
    }
    const focused = groups.contains(document.activeElement) ? document.activeElement.id : null;
    groups.replaceChildren(...parts);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    const blocked = channels.filter((c) => !(c.botCanRead && c.botCanSend)).length;
    status.textContent = channels.length
      ? `${channels.length} channel${channels.length === 1 ? "" : "s"}` +
        (blocked ? `; the bot cannot read or answer in ${blocked} of them (marked).` : ".")
      : "This server has no text, voice or forum channels the bot could watch.";
    renderMode();
  }

  async function load() {
    retry.hidden = true;
    status.textContent = "Loading the server's channels…";
    try {
      const body = await api(`${base}/channels`);
      channels = body.channels;
      renderChannels();
    } catch (error) {
      channels = null;
      const reason = error.code === "DISCORD_UNAVAILABLE"
        ? "Discord could not be reached, so the channel list cannot be shown."
        : error.message;
      status.textContent = `${reason} You can still change the mode and the other settings; the ticked channels stay as they are.`;
      retry.hidden = error.code === "DISCORD_NOT_CONNECTED";
      const ticked = [...selected].map((id) => channelItem({ id, name: `Channel ${id}` }));
      groups.replaceChildren(...(ticked.length ? [group("Ticked channels", ticked)] : []));
      renderMode();
    }
  }

  card.addEventListener("change", (event) => {
    const input = event.target;
    if (input.type === "checkbox" && input.id.startsWith("channel-")) {
      if (input.checked) selected.add(input.value);
      else selected.delete(input.value);
      input.removeAttribute("aria-invalid");
      renderWarning();
    } else if (input.name === "channelMode") {
      renderMode();
    }
    onChange();
  });
  for (const input of limitInputs) {
    input.addEventListener("input", () => {
      fieldError(input, "");
      onChange();
    });
  }
  retry.addEventListener("click", load);

  /** Checks the limits before saving; false (and the error shown, focused) when one is wrong. */
  function validate() {
    for (const input of limitInputs) {
      const max = Number(input.max);
      const text = input.value.trim();
      if (!/^\d+$/.test(text) || Number(text) > max) {
        fieldError(input, `Enter a whole number from 0 to ${max.toLocaleString("en-US")}.`);
        input.focus();
        return false;
      }
    }
    return true;
  }

  /** The changed fields as the API takes them. */
  function body() {
    const out = changes();
    for (const name of LIMITS) if (name in out) out[name] = Number(out[name]);
    return out;
  }

  function setForm(values) {
    card.querySelector(`input[name="channelMode"][value="${values.channelMode}"]`).checked = true;
    card.querySelector(`input[name="replyMode"][value="${values.replyMode}"]`).checked = true;
    limitInputs.forEach((input, i) => { input.value = String(values[LIMITS[i]]); });
    selected = new Set(values.channelIds);
    if (channels) renderChannels();
    else renderMode();
  }

  /** After a save: what the API answered is the new saved state. */
  function markSaved(config) {
    saved = {
      channelMode: config.channelMode,
      channelIds: config.channelIds,
      replyMode: config.replyMode,
      maxRepliesPerHour: config.maxRepliesPerHour,
      minSecondsBetweenReplies: config.minSecondsBetweenReplies,
    };
    setForm(saved);
  }

  /** Shows an error of a save that concerns this card; true when it did. */
  function showError(error, formError) {
    if (error.code === "UNKNOWN_CHANNEL") {
      const ids = (error.body.details && error.body.details.channelIds) || [];
      for (const id of ids) {
        const box = document.getElementById(`channel-${id}`);
        if (box) box.setAttribute("aria-invalid", "true");
      }
      formError.textContent = `${error.message} The list below is reloaded; untick what is no longer there.`;
      formError.hidden = false;
      load();
      return true;
    }
    if (error.code === "VALIDATION_ERROR") {
      for (const detail of (error.body && error.body.details) || []) {
        const input = limitInputs.find((i) => i.name === String(detail.field || "").split(".").pop());
        if (input) {
          fieldError(input, detail.message || error.message);
          input.focus();
          return true;
        }
      }
    }
    return false;
  }

  // A change saved elsewhere (another tab, the API) shows here while this card has no edits.
  onLiveUpdate((doc) => {
    const fresh = doc.getElementById("behaviour-card");
    if (!fresh) return;
    const values = JSON.parse(fresh.dataset.saved);
    if (canonical(values) === canonical(saved)) return;
    const dirty = Object.keys(changes()).length > 0;
    saved = values;
    if (!dirty) setForm(saved);
    onChange();
  });

  load();
  renderMode();
  return { isDirty: () => Object.keys(changes()).length > 0, validate, body, markSaved, showError };
}
