// /settings: the "Agent engine" card — the account's own OpenAI-compatible endpoint (save, test,
// remove its key, remove it). The stored key is never sent to the page: the key field is always
// empty, and an empty field keeps the stored key.
import {
  api, clearErrors, confirmAction, fieldError, flashAfterReload, refreshNow, say, showFieldErrors,
} from "./common.js";

const card = document.getElementById("engine-card");
if (card) {
  const form = document.getElementById("engine-form");
  const baseUrl = document.getElementById("engine-base-url");
  const model = document.getElementById("engine-model");
  const apiKey = document.getElementById("engine-api-key");
  const save = document.getElementById("engine-save");
  const test = document.getElementById("engine-test");
  const removeKey = document.getElementById("engine-remove-key");
  const removeEngine = document.getElementById("engine-remove");
  const status = document.getElementById("engine-status");
  const result = document.getElementById("engine-test-result");
  const formError = document.getElementById("engine-error");

  const KEY_KEPT = "stored; leave empty to keep";
  const NO_KEY = "none stored (a local server needs none)";

  function showResult(message, kind) {
    result.textContent = message;
    result.dataset.kind = kind;
    result.hidden = !message;
  }

  function showSaved(engine) {
    const openai = engine.openai;
    const own = openai.source === "account";
    card.dataset.own = own ? "true" : "false";
    card.dataset.baseUrl = own ? openai.baseUrl : "";
    card.dataset.model = own ? openai.model : "";
    if (own) {
      baseUrl.value = openai.baseUrl;
      model.value = openai.model;
    }
    apiKey.value = "";
    apiKey.placeholder = own && openai.hasApiKey ? KEY_KEPT : NO_KEY;
    removeKey.hidden = !(own && openai.hasApiKey);
    removeEngine.hidden = !own;
    test.disabled = !openai.available;
  }

  function showError(error) {
    if (error.code === "INVALID_URL") {
      fieldError(baseUrl, error.message);
      baseUrl.focus();
    } else if (!(error.code === "VALIDATION_ERROR" && showFieldErrors(form, error))) {
      formError.textContent = error.message;
      formError.hidden = false;
    }
  }

  async function put(body, busyButton, busyText) {
    const label = busyButton.textContent;
    busyButton.disabled = true;
    busyButton.textContent = busyText;
    try {
      const engine = await api("/api/engine/openai", { method: "PUT", body });
      showSaved(engine);
      showResult("", "info");
      return engine;
    } finally {
      busyButton.textContent = label;
      busyButton.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    say(status, "");
    const url = baseUrl.value.trim();
    const name = model.value.trim();
    if (!/^https?:\/\/\S+$/i.test(url)) {
      fieldError(baseUrl, "Use the API's address, starting with https:// (or http://).");
      baseUrl.focus();
      return;
    }
    if (!name) {
      fieldError(model, "Name the model to use, e.g. gpt-4o-mini.");
      model.focus();
      return;
    }
    const body = { baseUrl: url, model: name };
    const key = apiKey.value.trim();
    if (key) {
      if (!/^[\x21-\x7e]+$/.test(key)) {
        fieldError(apiKey, "An API key has no spaces or special characters; paste it again.");
        apiKey.focus();
        return;
      }
      body.apiKey = key;
    }
    try {
      await put(body, save, "Saving…");
      say(status, "Saved. Test it to see that the model answers.", "success");
      refreshNow();
    } catch (error) {
      showError(error);
    }
  });

  test.addEventListener("click", async () => {
    clearErrors(form);
    test.disabled = true;
    test.textContent = "Testing…";
    showResult("Asking the model for one short answer…", "info");
    try {
      const answer = await api("/api/engine/openai/test", { method: "POST" });
      showResult(`It works: ${answer.model} answered in ${answer.latencyMs.toLocaleString("en-US")} ms.`, "success");
    } catch (error) {
      showResult(error.message, "error");
    } finally {
      test.textContent = "Test";
      test.disabled = false;
      refreshNow();
    }
  });

  removeKey.addEventListener("click", async () => {
    const ok = await confirmAction({
      title: "Remove the stored key?",
      message: "The model is then called without a key, which only servers that need none accept.",
      confirmLabel: "Remove key",
    });
    if (!ok) return;
    clearErrors(form);
    try {
      await put(
        { baseUrl: card.dataset.baseUrl, model: card.dataset.model, apiKey: null },
        removeKey,
        "Removing…",
      );
      say(status, "The key was removed.", "success");
      apiKey.focus();
    } catch (error) {
      showError(error);
    }
  });

  removeEngine.addEventListener("click", async () => {
    const fallback = card.dataset.install === "true"
      ? "Servers that use it switch to the installation's model."
      : "Servers that use it cannot answer until you set up a model again.";
    const ok = await confirmAction({
      title: "Remove your engine?",
      message: `Your base URL, model and key are deleted. ${fallback}`,
      confirmLabel: "Remove engine",
    });
    if (!ok) return;
    removeEngine.disabled = true;
    try {
      await api("/api/engine/openai", { method: "DELETE" });
      flashAfterReload(`Your engine was removed. ${fallback}`);
      window.location.reload();
    } catch (error) {
      removeEngine.disabled = false;
      say(status, error.message, "error");
    }
  });
}
