// /settings: change password, sign out everywhere, delete the account. (Without JavaScript the
// password form is POSTed to /settings/password: web/forms.py.)
import { api, clearErrors, confirmAction, fieldError, say, showFieldErrors } from "./common.js";

const passwordForm = document.getElementById("password-form");
if (passwordForm) {
  const current = document.getElementById("current-password");
  const next = document.getElementById("new-password");
  const status = document.getElementById("password-status");
  const formError = document.getElementById("password-error");
  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(passwordForm);
    say(status, "");
    if (!current.value) { fieldError(current, "Enter your current password."); current.focus(); return; }
    if (next.value.length < 10) { fieldError(next, "Use at least 10 characters."); next.focus(); return; }
    const submit = passwordForm.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await api("/api/auth/password", { method: "POST", body: { currentPassword: current.value, newPassword: next.value } });
      current.value = "";
      next.value = "";
      say(status, "Password changed. Your other devices were signed out.", "success");
    } catch (error) {
      if (error.code === "WRONG_PASSWORD") { fieldError(current, error.message); current.focus(); }
      else if (!(error.code === "VALIDATION_ERROR" && showFieldErrors(passwordForm, error))) {
        formError.textContent = error.message;
        formError.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  });
}

const everywhere = document.getElementById("logout-everywhere");
everywhere.addEventListener("click", async () => {
  const ok = await confirmAction({
    title: "Sign out everywhere?",
    message: "Every browser and API client signed in to this account is signed out, this one included.",
    confirmLabel: "Sign out everywhere",
  });
  if (!ok) return;
  try {
    await api("/api/auth/logout-everywhere", { method: "POST" });
    window.location.assign("/login");
  } catch (error) {
    say(document.getElementById("sessions-status"), error.message, "error");
  }
});

const deleteButton = document.getElementById("delete-account");
deleteButton.addEventListener("click", async () => {
  const email = deleteButton.dataset.email;
  const ok = await confirmAction({
    title: "Delete your account?",
    message: "Everything is deleted: your bot connection, server configurations, websites, stats and chats. This cannot be undone.",
    confirmLabel: "Delete account",
    requireText: email || null,
    requireLabel: email ? `Type your email (${email}) to confirm` : "",
  });
  if (!ok) return;
  const status = document.getElementById("delete-status");
  try {
    await api("/api/auth/me", { method: "DELETE", body: { confirmEmail: email } });
    window.location.assign("/");
  } catch (error) {
    say(status, error.message, "error");
  }
});
