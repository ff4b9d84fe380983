/* Scan station: each code a reader types (and Enter) is sent at once; the row, colour,
   sound and counts update without reloading, and focus stays in the field. Without
   JavaScript the form posts normally and the page reloads. */
(function () {
  var form = document.getElementById("scan-form");
  if (!form || !window.fetch) { return; }
  var input = document.getElementById("payload");
  var rows = document.getElementById("scan-rows");
  var last = document.getElementById("last-scan");
  var queue = Promise.resolve();
  var audio = null;

  function beep(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var tones = ok ? [[880, 0.12]] : [[220, 0.18], [180, 0.25]];
      var at = audio.currentTime;
      tones.forEach(function (tone) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = tone[0]; gain.gain.value = 0.2;
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(at); osc.stop(at + tone[1]); at += tone[1] + 0.05;
      });
    } catch (e) { /* no sound device: the colours still tell */ }
  }

  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }

  function show(item, counts) {
    var tr = document.createElement("tr");
    tr.className = "scan-" + item.status + " scan-new";
    [item.seq, item.status_label, item.application_id, item.visit_mode_label, item.reason,
     item.source].forEach(function (v) { tr.appendChild(cell(v)); });
    tr.appendChild(cell(""));
    rows.insertBefore(tr, rows.firstChild);
    Object.keys(counts).forEach(function (key) {
      document.querySelectorAll("[data-count=" + key + "]").forEach(function (el) {
        el.textContent = counts[key];
      });
    });
    last.className = "last-scan scan-" + item.status;
    last.textContent = item.status === "ok"
      ? item.visit_mode_label + "　" + item.application_id
      : item.status_label + "：" + item.reason;
    last.dataset.status = item.status;
    beep(item.status === "ok");
  }

  function send(payload) {
    var data = new FormData(form);
    data.set("payload", payload);
    return fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                               headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (json) {
        if (json.error) { last.className = "last-scan scan-invalid"; last.textContent = json.error; beep(false); }
        else { show(json.item, json.counts); }
      })
      .catch(function () { last.className = "last-scan scan-invalid"; last.textContent = "通信エラー"; beep(false); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var payload = input.value;
    input.value = "";
    input.focus();
    if (payload.trim()) { queue = queue.then(function () { return send(payload); }); }
  });
  document.addEventListener("click", function () {
    if (document.activeElement === document.body) { input.focus(); }
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) { event.preventDefault(); }
    });
  });
}());
