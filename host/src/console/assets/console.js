// funnel console: progressive enhancement only; every page works without this file.
// The four-emails form shows only as many email fieldsets as "How many emails" asks for.
(function () {
  "use strict";
  function syncEmailCount(select) {
    var count = parseInt(select.value, 10) || 1;
    document.querySelectorAll("fieldset[data-email]").forEach(function (fieldset) {
      fieldset.hidden = parseInt(fieldset.getAttribute("data-email"), 10) > count;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("select[data-email-count]");
    if (select) {
      syncEmailCount(select);
      select.addEventListener("change", function () { syncEmailCount(select); });
    }
  });
})();
