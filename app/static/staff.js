/* Staff site: Japanese date picker that closes on pick (FAB's default is English). */
(function ($) {
  if (!$ || !$.fn.datepicker) { return; }
  $.fn.datepicker.dates.ja = {
    days: ["日曜", "月曜", "火曜", "水曜", "木曜", "金曜", "土曜"],
    daysShort: ["日", "月", "火", "水", "木", "金", "土"],
    daysMin: ["日", "月", "火", "水", "木", "金", "土"],
    months: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
    monthsShort: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
    today: "今日", clear: "クリア", format: "yyyy-mm-dd", titleFormat: "yyyy年mm月", weekStart: 0
  };
  $(function () {
    var lang = (document.documentElement.lang || "ja").slice(0, 2) === "en" ? "en" : "ja";
    $(".appbuilder_datetime, .appbuilder_date").each(function () {
      $(this).datepicker("destroy").datepicker({
        format: "yyyy-mm-dd", language: lang, autoclose: true, todayHighlight: true,
        forceParse: false
      });
    });
  });
}(window.jQuery));
/* Print buttons without inline handlers (the CSP forbids them). */
document.addEventListener("click", function (event) {
  var target = event.target.closest ? event.target.closest("[data-print]") : null;
  if (target) { window.print(); }
});
/* "Select all" checkboxes in plain tables. */
document.addEventListener("change", function (event) {
  if (event.target.hasAttribute && event.target.hasAttribute("data-check-all")) {
    var table = event.target.closest("table");
    table.querySelectorAll("tbody input[type=checkbox]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  }
});
/* Choice filters above a list (the card ledger's state and visit mode): picking one sends
   the list's search form; an empty choice ("all") is left out instead of filtering on "". */
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) {
    if (target.form.requestSubmit) { target.form.requestSubmit(); } else { target.form.submit(); }
  }
});
document.addEventListener("submit", function (event) {
  event.target.querySelectorAll && document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    if (select.form === event.target && !select.value) { select.disabled = true; }
  });
}, true);
/* Forms marked data-submit-once (a money step, a receipt print): a second click within a
   few seconds does nothing, so a double click never takes money twice or prints the
   original receipt as a 再発行. The service refuses a second payment anyway. */
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.hasAttribute || !form.hasAttribute("data-submit-once")) { return; }
  if (form.dataset.sentAt && Date.now() - Number(form.dataset.sentAt) < 4000) {
    event.preventDefault();
    return;
  }
  form.dataset.sentAt = String(Date.now());
});
