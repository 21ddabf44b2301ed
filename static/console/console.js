// The console's few lines of script beyond htmx: "select all", the "Retry selected" button state,
// and what inline handlers would do (the Content-Security-Policy allows none): a select that
// submits its form on change, a form that asks for confirmation first.
(function () {
  "use strict";
  function refresh() {
    var boxes = document.querySelectorAll('input[name="sel"][form="bulk-form"]:not(:disabled)');
    var picked = document.querySelectorAll('input[name="sel"][form="bulk-form"]:checked');
    var button = document.getElementById("retry-selected");
    if (button) {
      button.disabled = picked.length === 0;
      button.textContent = picked.length ? "Retry " + picked.length + " selected" : "Retry selected";
    }
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = boxes.length > 0 && picked.length === boxes.length;
      all.indeterminate = picked.length > 0 && picked.length < boxes.length;
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll('input[name="sel"][form="bulk-form"]:not(:disabled)').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.id === "select-all" || target.name === "sel") refresh();
    if (target.hasAttribute("data-submit-on-change") && target.form) target.form.requestSubmit();
  });
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", refresh);
  document.addEventListener("DOMContentLoaded", refresh);
})();
