// The inbox by keyboard (j/k move, x selects, r retries, o opens, / searches, ? lists the keys),
// the copy-id buttons, and nothing else. A file of its own: the Content-Security-Policy allows
// no inline script.
(function () {
  "use strict";
  var focusedId = null; // the focused row's id, kept across htmx swaps of the row or the list

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tbody#rows tr.row"));
  }
  function focused() {
    return focusedId ? document.getElementById(focusedId) : null;
  }
  function mark(row) {
    rows().forEach(function (r) {
      r.classList.remove("kb-focus");
      r.removeAttribute("aria-current");
    });
    if (!row) return;
    focusedId = row.id;
    row.classList.add("kb-focus");
    row.setAttribute("aria-current", "true");
    row.setAttribute("tabindex", "-1");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(focused());
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    mark(all[next]);
  }
  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }
  function help() {
    var dialog = document.getElementById("keys-help");
    if (!dialog) return;
    if (dialog.open) dialog.close();
    else dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var row = focused();
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x": {
        var box = row && row.querySelector('input[name="sel"]:not(:disabled)');
        if (!box) return;
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true })); // console.js counts it
        break;
      }
      case "r": {
        // The row's own Retry button: the same form, htmx request and confirmation as a click.
        var button = row && row.querySelector("button.retry:not(:disabled)");
        if (!button) return;
        button.click();
        break;
      }
      case "o":
      case "Enter": {
        var link = row && row.querySelector("td.name a");
        // Enter on a button or link does its own thing; on the focused row it opens the row.
        if (!link || (event.key === "Enter" && event.target !== row)) return;
        link.click();
        break;
      }
      case "/": {
        var search = document.getElementById("f-q");
        if (!search) return;
        search.focus();
        search.select();
        break;
      }
      case "?": help(); break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy[data-copy]");
    if (button) {
      copy(button);
      return;
    }
    var open = event.target.closest && event.target.closest("[data-keys-help]");
    if (open) help();
  });

  function copy(button) {
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = "copied";
      button.classList.add("copied");
      window.setTimeout(function () {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text, done); });
    } else {
      fallback(text, done);
    }
  }
  function fallback(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    try { if (document.execCommand("copy")) done(); } finally { area.remove(); }
  }

  // A swapped row (polling, retry) or list (a filter) keeps the focus where it was, if there.
  document.addEventListener("htmx:afterSettle", function () {
    var row = focused();
    if (row && !row.classList.contains("kb-focus")) {
      row.classList.add("kb-focus");
      row.setAttribute("aria-current", "true");
      row.setAttribute("tabindex", "-1");
    }
  });
})();

// The API keys page: a role preset ticks that role's permissions (the server applies the preset
// anyway; this shows what it means). Ticking a box by hand makes the key custom.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.form;
    if (!form || form.id !== "key-form") return;
    var preset = form.querySelector("select[data-presets]");
    if (target === preset) {
      var option = preset.options[preset.selectedIndex];
      var wanted = (option.getAttribute("data-permissions") || "").split(",");
      if (!option.value) return;
      form.querySelectorAll('input[name="permissions"]').forEach(function (box) {
        box.checked = wanted.indexOf(box.value) >= 0;
      });
    } else if (target.name === "permissions" && preset) {
      preset.value = "";
    }
  });
})();
