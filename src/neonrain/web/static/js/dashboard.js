// /dashboard: bot switches on server cards, and the "Add server" guild picker.
import { api, bindSwitches, onLiveUpdate, refreshNow, say, setSwitch } from "./common.js";

const grid = document.getElementById("server-grid");
if (grid) {
  bindSwitches(grid, {
    statusFor: (button) => button.closest(".server-card").querySelector("[data-row-status]"),
    onChanged: () => refreshNow(),
  });
  // Keep switches in step with the refreshed cards (e.g. changed in another tab).
  onLiveUpdate(() => {
    grid.querySelectorAll(".server-card").forEach((card) => {
      const body = card.querySelector("[data-live^=card-]");
      const button = card.querySelector("[data-toggle-server]");
      if (body && button && button.getAttribute("aria-busy") !== "true") {
        setSwitch(button, body.dataset.active === "true", body.dataset.state);
      }
    });
  });
}

const addButton = document.getElementById("add-server-button");
const panel = document.getElementById("add-server-panel");
if (addButton && panel) {
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
    if (guilds.length && !shown.length) say(status, `No server matches “${search.value.trim()}”.`);
    else if (guilds.length) say(status, `${guilds.length} server${guilds.length === 1 ? "" : "s"} found.`);
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
  addButton.addEventListener("click", () => {
    const open = addButton.getAttribute("aria-expanded") !== "true";
    addButton.setAttribute("aria-expanded", open ? "true" : "false");
    panel.hidden = !open;
    if (open) {
      load();
      panel.querySelector("h3").setAttribute("tabindex", "-1");
      panel.querySelector("h3").focus();
    }
  });
}
