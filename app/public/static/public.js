/* Residents' site: small conveniences only; every page works without this file. */
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  /* A second tap while the first is on its way would submit twice (the server answers a
     double submit with the first booking anyway; this spares the resident the wait). */
  document.querySelectorAll("button[data-once]").forEach(function (button) {
    button.form.addEventListener("submit", function () {
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  });
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
})();
