// /register and /login: JSON sign-up / sign-in with inline errors, then on to `next`. (Without
// JavaScript the form is POSTed to the same address and handled there: web/forms.py.)
import { api, clearErrors, fieldError, showFieldErrors } from "./common.js";

const form = document.getElementById("auth-form");
if (form) {
  const mode = form.dataset.mode;
  const email = form.querySelector("#email");
  const password = form.querySelector("#password");
  const formError = document.getElementById("auth-error");
  const submit = form.querySelector("button[type=submit]");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    let bad = false;
    if (!email.value.trim()) {
      fieldError(email, "Enter your email address.");
      bad = true;
    } else if (!email.validity.valid) {
      fieldError(email, "Enter a valid email address, like name@example.com.");
      bad = true;
    }
    if (!password.value) {
      fieldError(password, "Enter your password.");
      bad = true;
    } else if (mode === "register" && password.value.length < 10) {
      fieldError(password, "Use at least 10 characters.");
      bad = true;
    }
    if (bad) {
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    submit.disabled = true;
    try {
      await api(`/api/auth/${mode === "register" ? "register" : "login"}`, {
        method: "POST",
        body: { email: email.value.trim(), password: password.value },
        anonymous: true,
      });
      window.location.assign(form.dataset.next || "/dashboard");
    } catch (error) {
      submit.disabled = false;
      if (error.code === "EMAIL_TAKEN") {
        fieldError(email, error.message);
        email.focus();
      } else if (!(error.code === "VALIDATION_ERROR" && showFieldErrors(form, error))) {
        formError.textContent = error.message;
        formError.hidden = false;
        (error.code === "INVALID_CREDENTIALS" ? password : email).focus();
      }
    }
  });
}
