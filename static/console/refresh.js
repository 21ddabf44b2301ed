// The inbox keeps what the operator picked when its list is swapped in place ("3 new failures —
// show", a filter change): the rows still listed stay checked. (No inline script: the CSP.)
(function () {
  "use strict";
  var kept = null;
  function isResults(event) {
    var target = event.detail && event.detail.target;
    return target && target.id === "results";
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isResults(event)) return;
    kept = {};
    document.querySelectorAll('#results input[name="sel"]:checked').forEach(function (box) {
      kept[box.value] = true;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!kept) return;
    document.querySelectorAll('#results input[name="sel"]:not(:disabled)').forEach(function (box) {
      if (kept[box.value]) box.checked = true;
    });
    kept = null;
  });
})();
