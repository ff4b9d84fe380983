/* The application form (申請受付): show a field only when it applies, so a clerk sees the
   reissue questions for a 再交付, the session for a 出張申請 and the proxy's papers for a
   代理人. Hidden fields keep their values; the service checks every field anyway, and a
   row holding an error message is never hidden. */
(function () {
  "use strict";
  function row(id) {
    var element = document.getElementById(id);
    return element ? element.closest("tr") : null;
  }
  function value(id) {
    var element = document.getElementById(id);
    return element ? element.value : "";
  }
  function checked(name) {
    var element = document.querySelector('input[name="' + name + '"]:checked');
    return element ? element.value : "";
  }
  function show(ids, visible) {
    ids.forEach(function (id) {
      var tr = row(id);
      if (tr) {
        tr.hidden = !visible && !tr.querySelector(".alert-danger");
      }
    });
  }
  function refresh() {
    var kind = value("kind"), method = value("method"), who = checked("collector");
    show(["reissue_reason", "old_card_expires_on", "holder_not_at_fault"], kind === "reissue");
    show(["official_error"], kind === "reissue" || kind === "express");
    show(["outreach_session_id"], method === "outreach");
    show(["proxy_reason", "reason_proof", "proxy_identity"], who === "proxy");
    show(["authority_proof"], who === "proxy" || who === "legal_representative");
  }
  document.addEventListener("change", refresh);
  if (window.jQuery) {
    window.jQuery(document).on("change", "select", refresh);  /* select2 */
  }
  refresh();
})();
