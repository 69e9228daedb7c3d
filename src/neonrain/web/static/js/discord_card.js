// The Discord connection card (dashboard and settings): connect a token, disconnect. The card is a
// live region (its content is replaced when the connection changes elsewhere), so its controls are
// found when they are used, not when the page loads.
import { api, confirmAction, fieldError, flashAfterReload, say } from "./common.js";

const card = document.getElementById("discord-card");
if (card) {
  card.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-action=connect]");
    if (!form) return;
    event.preventDefault();
    const input = form.querySelector("#bot-token");
    const submit = form.querySelector("button[type=submit]");
    fieldError(input, "");
    const token = input.value.trim();
    if (!token) {
      fieldError(input, "Paste your bot's token first.");
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Connecting…";
    try {
      const result = await api("/api/discord/connect", { method: "POST", body: { token } });
      input.value = "";
      flashAfterReload(`Connected as ${result.bot.username}. Invite it to a server, then add that server.`);
      window.location.reload();
    } catch (error) {
      fieldError(input, error.message);
      input.focus();
      submit.disabled = false;
      submit.textContent = "Connect";
    }
  });

  card.addEventListener("click", async (event) => {
    const disconnect = event.target.closest("[data-action=disconnect]");
    if (!disconnect) return;
    const ok = await confirmAction({
      title: "Disconnect the bot?",
      message: "The bot goes offline in every server within a few seconds. Your server configurations stay; connect a token again to bring it back.",
      confirmLabel: "Disconnect",
    });
    if (!ok) return;
    disconnect.disabled = true;
    try {
      await api("/api/discord/disconnect", { method: "POST" });
      flashAfterReload("The bot was disconnected. Your server configurations were kept.");
      window.location.reload();
    } catch (error) {
      say(document.getElementById("discord-status"), error.message, "error");
      disconnect.disabled = false;
    }
  });
}
