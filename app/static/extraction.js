/* The extraction screen (抽出): works without this script (every button posts the form);
   with it, the operators follow the chosen field, a condition row is added without a round
   trip, switching the subject reloads at once, and an export shows 作成中 until the file
   arrives (the response sets a cookie with the token sent here). Same origin only. */
(function () {
  "use strict";
  var form = document.querySelector("[data-extraction]");
  if (!form) { return; }

  // every operator with its label (a hidden select of the page)
  var allOps = Array.prototype.map.call(
    form.querySelectorAll("[data-all-ops] option"), function (o) { return [o.value, o.textContent]; });
  var placeholder = form.dataset.chooseField || "";

  function fitRow(row) {
    var field = row.querySelector("[data-field]");
    var op = row.querySelector("[data-op]");
    var value = row.querySelector("[data-value]");
    var chosen = field.options[field.selectedIndex];
    var allowed = (chosen && chosen.value && chosen.dataset.ops) ? chosen.dataset.ops.split(" ") : [];
    var current = op.value;
    var emptyLabel = op.querySelector("option[value='']");
    if (emptyLabel) { placeholder = emptyLabel.textContent; }
    // the operators of the chosen field only; none (「（項目を選択）」) before a field is chosen
    while (op.options.length) { op.remove(0); }
    if (!allowed.length) {
      op.add(new Option(placeholder, ""));
    }
    allOps.forEach(function (pair) {
      if (allowed.indexOf(pair[0]) >= 0) { op.add(new Option(pair[1], pair[0])); }
    });
    if (allowed.indexOf(current) >= 0) { op.value = current; }
    var type = chosen ? chosen.dataset.type : "";
    if (type === "choice" || type === "boolean") {
      value.setAttribute("list", "extraction-choices-" + chosen.value);
    } else {
      value.removeAttribute("list");
    }
    var kind = op.value.split(":")[0];
    // the end of a range only for a range; no value for empty / not empty
    row.querySelector("[data-to-wrap]").hidden = kind !== "range";
    value.hidden = kind === "empty" || kind === "not_empty";
    value.classList.toggle("extraction-amount", kind === "older_than" || kind === "within_last");
    value.placeholder = (kind === "older_than" || kind === "within_last") ? "N" : "";
  }

  form.addEventListener("change", function (event) {
    var row = event.target.closest("[data-condition]");
    if (row && (event.target.matches("[data-field]") || event.target.matches("[data-op]"))) {
      fitRow(row);
    }
    if (event.target.matches("[data-subject]")) {
      form.querySelector("[data-switch]").click();
    }
  });
  Array.prototype.forEach.call(form.querySelectorAll("[data-condition]"), fitRow);

  form.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    if (!add) { return; }
    var group = add.closest("[data-group]");
    var rows = group.querySelectorAll("[data-condition]");
    var counter = group.querySelector("[data-rows]");
    var index = parseInt(counter.value, 10);
    var last = rows[rows.length - 1];
    if (!last || index >= 21) { return; }  // the server adds it instead (or refuses)
    event.preventDefault();
    var row = last.cloneNode(true);
    Array.prototype.forEach.call(row.querySelectorAll("[name]"), function (el) {
      el.name = el.name.replace(/_c[0-9]+_/, "_c" + index + "_");
      if (el.type === "checkbox") { el.checked = false; } else if (el.tagName === "INPUT") { el.value = ""; }
      if (el.tagName === "SELECT") { el.selectedIndex = 0; }
    });
    last.parentNode.appendChild(row);
    counter.value = String(index + 1);
    var note = row.querySelector("[data-note]");
    if (note) { note.parentNode.removeChild(note); }
    fitRow(row);
    row.querySelector("[data-field]").focus();
  });

  var progress = form.querySelector("[data-progress]");
  var timer = null;
  function readCookie(name) {
    var parts = document.cookie.split("; ");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name + "=") === 0) { return decodeURIComponent(parts[i].slice(name.length + 1)); }
    }
    return null;
  }
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    var tokenField = form.querySelector("[name=download_token]");
    if (!button || !button.hasAttribute("data-export") || !progress) { tokenField.value = ""; return; }
    var token = String(Date.now()) + String(Math.floor(Math.random() * 1e9));
    tokenField.value = token;
    progress.hidden = false;
    progress.textContent = progress.dataset.working;
    form.setAttribute("aria-busy", "true");
    if (timer) { window.clearInterval(timer); }
    var started = Date.now();
    timer = window.setInterval(function () {
      var value = readCookie("extraction_download");
      if (value && value.indexOf(token + ".") === 0) {
        var parts = value.split(".");
        var text = progress.dataset.done.replace("{rows}", parts[1]);
        if (parts[2] && parts[2] !== "0") { text += " " + progress.dataset.replaced.replace("{n}", parts[2]); }
        progress.textContent = text;
        form.removeAttribute("aria-busy");
        window.clearInterval(timer);
        timer = null;
      } else if (Date.now() - started > 30 * 60 * 1000) {
        window.clearInterval(timer);  // the page changed to the refusal, or gave up
        timer = null;
      }
    }, 500);
  });
})();
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
