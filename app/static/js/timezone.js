// Signup: the browser's timezone fills the hidden field, so a new workspace keeps the
// owner's clock when it lies in the country they chose. Runs on full loads and on
// boosted navigation (htmx does not run inline scripts here).
(function () {
  function fill(root) {
    var field = (root || document).querySelector ? (root || document).querySelector("#signup-timezone") : null;
    if (!field || field.value) return;
    try { field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser: the country decides */ }
  }
  document.addEventListener("DOMContentLoaded", function () { fill(document); });
  document.addEventListener("htmx:load", function (event) { fill(event.target); });
})();

// Settings: the timezone picker is an <input list>. A browser lists only the places that
// match what the box holds, so on focus the chosen place steps aside (kept as the
// placeholder) and the whole list opens to typing; leaving the box empty puts it back.
(function () {
  var PICKER = "input[list=timezones]";
  document.addEventListener("focusin", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches(PICKER) || !box.value) return;
    box.dataset.picked = box.value;
    box.placeholder = box.value;
    box.value = "";
  });
  function restore(box) {
    if (!box.value && box.dataset.picked) box.value = box.dataset.picked;
  }
  document.addEventListener("focusout", function (event) {
    if (event.target.matches && event.target.matches(PICKER)) restore(event.target);
  });
  // Enter in the emptied box sends the place it held (before htmx reads the form).
  document.addEventListener("submit", function (event) {
    event.target.querySelectorAll(PICKER).forEach(restore);
  }, true);
})();
