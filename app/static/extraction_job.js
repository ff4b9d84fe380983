/* The page of a background export (抽出): asks the server (same origin) every second how
   far the job is and moves the bar; when the job has finished, the page is read again to
   show the download (or the reason it failed). Without this script the page reloads
   itself every two seconds (a meta refresh inside <noscript>). */
(function () {
  "use strict";
  var box = document.querySelector("[data-job]");
  if (!box || box.dataset.finished === "1" || !window.fetch) { return; }
  var bar = box.querySelector("[data-job-bar]");
  var percent = box.querySelector("[data-job-percent]");
  var rows = box.querySelector("[data-job-rows]");
  var label = box.querySelector("[data-job-label]");
  var template = box.querySelector("[data-job-text]").dataset.rows;
  var failures = 0;
  function poll() {
    window.fetch(box.dataset.statusUrl, {credentials: "same-origin", cache: "no-store",
                                         headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (status) {
        failures = 0;
        bar.value = status.percent;
        bar.textContent = status.percent + "%";
        percent.textContent = status.percent + "%";
        label.textContent = status.label;
        rows.textContent = template.replace("{written}", status.rows_written.toLocaleString("ja-JP"))
                                   .replace("{total}", status.rows_total.toLocaleString("ja-JP"));
        if (status.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () {
        failures += 1;
        if (failures < 30) { window.setTimeout(poll, 2000); }
      });
  }
  window.setTimeout(poll, 1000);
})();
