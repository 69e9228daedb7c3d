// The Discord connection card (dashboard and settings): connect a token, disconnect.
import { api, confirmAction, fieldError, flashAfterReload, say } from "./common.js";

const card = document.getElementById("discord-card");
if (card) {
  const form = card.querySelector("form[data-action=connect]");
  if (form) {
    const input = form.querySelector("#bot-token");
    const submit = form.querySelector("button[type=submit]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
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
  }
  const disconnect = card.querySelector("[data-action=disconnect]");
  if (disconnect) {
    disconnect.addEventListener("click", async () => {
      const ok = await confirmAction({
        title: "Disconnect the bot?",
        message: "The bot goes offline in every server within a few seconds. Your server configurations stay; connect a token again to bring it back.",
        confirmLabel: "Disconnect",
      });
      if (!ok) return;
      const status = card.querySelector("[data-status-for=discord]");
      disconnect.disabled = true;
      try {
        await api("/api/discord/disconnect", { method: "POST" });
        flashAfterReload("The bot was disconnected. Your server configurations were kept.");
        window.location.reload();
      } catch (error) {
        say(status, error.message, "error");
        disconnect.disabled = false;
      }
    });
  }
}
