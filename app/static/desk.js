/* The check-in desk: figures and states refresh every 15 s; the venue menu jumps. */
(function () {
  "use strict";
  var box = document.querySelector("[data-counts-url]");
  if (box) {
    var refresh = function () {
      fetch(box.dataset.countsUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) {
          if (r.redirected) { window.location.reload(); return null; }  // signed out: show it
          return r.ok ? r.json() : null;
        })
        .then(function (data) {
          if (!data) { return; }
          Object.keys(data.counts).forEach(function (key) {
            var el = box.querySelector('[data-count="' + key + '"]');
            if (el) { el.textContent = data.counts[key]; }
          });
          Object.keys(data.states).forEach(function (number) {
            var cell = document.querySelector('[data-state-of="' + number + '"]');
            if (cell && cell.firstChild) { cell.firstChild.textContent = data.states[number]; }
          });
          var at = box.querySelector("[data-count-at]");
          if (at) { at.textContent = data.at; }
        })
        .catch(function () {});
    };
    window.setInterval(refresh, 15000);
    box.refreshCounts = refresh;
  }
  var venue = document.querySelector("[data-goto-venue]");
  if (venue) {
    venue.addEventListener("change", function () { window.location = venue.value; });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
