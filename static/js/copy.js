// Copy buttons for one-time secrets. Without JavaScript the secret stays a selectable read-only field and the
// (hidden) button never shows.
(function () {
  "use strict";

  function selectField(field) {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
  }

  function fallbackCopy(field) {
    selectField(field);
    try {
      return document.execCommand("copy");
    } catch (err) {
      return false;
    }
  }

  function flash(button, text) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    window.setTimeout(function () { button.textContent = original; }, 2000);
  }

  function init() {
    document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
      field.addEventListener("focus", function () { field.select(); });
      field.addEventListener("click", function () { field.select(); });
    });
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      var field = document.getElementById(button.dataset.copyTarget);
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(
            function () { flash(button, "Copied"); },
            function () { flash(button, fallbackCopy(field) ? "Copied" : "Press Ctrl+C"); });
        } else {
          flash(button, fallbackCopy(field) ? "Copied" : "Press Ctrl+C");
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
