// Quick add (N, or its button) and the header search box (/).
(function () {
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable=true]");
  }
  function dialog() { return document.getElementById("quick-add-dialog"); }
  function openQuickAdd() {
    var d = dialog();
    if (!d) return false;
    if (!d.open) d.showModal();
    var name = document.getElementById("qa-name");
    if (name) name.focus();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "/") {
      var box = document.getElementById("global-search");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    } else if (event.key === "n" || event.key === "N") {
      if (openQuickAdd()) event.preventDefault();
    }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-open-quick-add]")) openQuickAdd();
    if (event.target.closest("[data-close-quick-add]")) {
      var d = dialog();
      if (d) d.close();
    }
    var results = document.getElementById("search-results");
    if (results && results.closest(".topbar") && !event.target.closest(".global-search")) {
      results.innerHTML = "";
    }
  });
  document.addEventListener("quick-added", function () {
    var d = dialog();
    if (d) { d.close(); var form = document.getElementById("quick-add-form"); if (form) form.reset(); }
  });
})();
