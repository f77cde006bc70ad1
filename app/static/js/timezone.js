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
