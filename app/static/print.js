/* The print button of the printable pages (they also print with Ctrl+P). */
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
