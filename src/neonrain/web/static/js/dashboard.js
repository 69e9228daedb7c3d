// /dashboard: bot switches on server cards, and the "Add server" guild picker. The cards, the
// summary, the Discord card and the "Add server" button are live regions (common.js), so handlers
// sit on elements that outlive a refresh.
import { api, bindSwitches, onLiveUpdate, refreshNow, say } from "./common.js";

const section = document.querySelector(".servers-section");
if (section) {
  bindSwitches(section, {
    statusFor: (serverId) => document.getElementById(`status-${serverId}`),
    onChanged: () => refreshNow(),
  });
}

const panel = document.getElementById("add-server-panel");
if (panel) {
  const list = document.getElementById("guild-list");
  const status = document.getElementById("guild-status");
  const searchField = panel.querySelector(".search-field");
  const search = document.getElementById("guild-search");
  let guilds = [];

  const render = () => {
    const query = search.value.trim().toLowerCase();
    const shown = guilds.filter((g) => !query || g.guildName.toLowerCase().includes(query));
    list.replaceChildren();
    for (const guild of shown) {
      const item = document.createElement("li");
      item.className = "guild-item";
      const icon = document.createElement("span");
      icon.className = "guild-icon guild-icon-sm";
      icon.setAttribute("aria-hidden", "true");
      const initial = document.createElement("span");
      initial.className = "guild-initial";
      initial.textContent = (guild.guildName.trim()[0] || "?").toUpperCase();
      if (guild.iconUrl) {
        const img = document.createElement("img");
        img.src = guild.iconUrl;
        img.alt = "";
        img.addEventListener("error", () => { img.hidden = true; });
        icon.append(img);
      }
      icon.append(initial);
      const name = document.createElement("span");
      name.className = "guild-name";
      name.textContent = guild.guildName;
      item.append(icon, name);
      if (guild.configured) {
        const link = document.createElement("a");
        link.className = "button button-small button-quiet";
        link.href = `/dashboard/servers/${encodeURIComponent(guild.serverId)}`;
        link.textContent = "Added · open";
        link.setAttribute("aria-label", `${guild.guildName} is already added; open it`);
        item.append(link);
      } else {
        const add = document.createElement("button");
        add.type = "button";
        add.className = "button button-small";
        add.textContent = "Add";
        add.setAttribute("aria-label", `Add ${guild.guildName}`);
        add.addEventListener("click", () => choose(guild, add));
        item.append(add);
      }
      list.append(item);
    }
    const plural = (n) => `${n} server${n === 1 ? "" : "s"}`;
    if (guilds.length && !shown.length) say(status, `No server matches “${search.value.trim()}”.`);
    else if (query) say(status, `${shown.length} of ${plural(guilds.length)} match “${search.value.trim()}”.`);
    else if (guilds.length) say(status, `${plural(guilds.length)} found.`);
  };

  const missing = document.getElementById("guild-missing");
  const showEmpty = () => {
    if (missing) missing.hidden = true;
    status.replaceChildren();
    status.dataset.kind = "info";
    status.hidden = false;
    status.append("Your bot is not in any server yet. ");
    const invite = panel.dataset.inviteUrl;
    if (invite) {
      const link = document.createElement("a");
      link.href = invite;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = "Invite it to a server";
      status.append(link, ", then open this list again.");
    }
  };

  const load = async () => {
    list.replaceChildren();
    say(status, "Loading your bot's servers…");
    status.setAttribute("aria-busy", "true");
    try {
      const body = await api("/api/discord/guilds");
      guilds = body.guilds;
      searchField.hidden = guilds.length <= 8;
      if (missing) missing.hidden = false;
      if (!guilds.length) showEmpty();
      else render();
    } catch (error) {
      status.replaceChildren();
      status.hidden = false;
      status.dataset.kind = "error";
      status.append(`${error.message} `);
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "button button-small";
      retry.textContent = "Try again";
      retry.addEventListener("click", load);
      status.append(retry);
    } finally {
      status.removeAttribute("aria-busy");
    }
  };

  const choose = async (guild, button) => {
    button.disabled = true;
    button.textContent = "Adding…";
    try {
      const config = await api("/api/servers", { method: "POST", body: { guildId: guild.guildId } });
      window.location.assign(`/dashboard/servers/${encodeURIComponent(config.serverId)}`);
    } catch (error) {
      if (error.code === "SERVER_ALREADY_CONFIGURED" && error.body.serverId) {
        window.location.assign(`/dashboard/servers/${encodeURIComponent(error.body.serverId)}`);
        return;
      }
      say(status, `${guild.guildName}: ${error.message}`, "error");
      button.disabled = false;
      button.textContent = "Add";
    }
  };

  search.addEventListener("input", render);
  document.addEventListener("click", (event) => {
    const addButton = event.target.closest("#add-server-button");
    if (!addButton) return;
    const open = addButton.getAttribute("aria-expanded") !== "true";
    addButton.setAttribute("aria-expanded", open ? "true" : "false");
    panel.hidden = !open;
    if (open) {
      load();
      panel.querySelector("h3").focus();
    }
  });
  // The connection may change elsewhere: keep the panel and its invite link in step.
  onLiveUpdate((doc) => {
    const fresh = doc.getElementById("add-server-panel");
    if (fresh) panel.dataset.inviteUrl = fresh.dataset.inviteUrl;
    const missing = document.getElementById("guild-missing");
    const freshMissing = doc.getElementById("guild-missing");
    if (missing && freshMissing && missing.innerHTML !== freshMissing.innerHTML) {
      missing.innerHTML = freshMissing.innerHTML;
    }
    const addButton = document.getElementById("add-server-button");
    if (!addButton) panel.hidden = true;
    else addButton.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
  });
}
