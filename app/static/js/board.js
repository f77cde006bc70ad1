/* Drag and drop on the board: SortableJS moves the card, htmx asks the server.
   The server answers with the whole board, so a refused move snaps back with
   its reason. Without JavaScript each card's "Move" form does the same. */
(function () {
  function filterValues() {
    var form = document.getElementById("board-filters");
    var values = {};
    if (!form) return values;
    new FormData(form).forEach(function (value, key) { if (value) values[key] = value; });
    return values;
  }

  function wire(root) {
    if (!window.Sortable) return;
    root.querySelectorAll("[data-stage-cards]").forEach(function (list) {
      if (list.dataset.sortable) return;
      list.dataset.sortable = "1";
      window.Sortable.create(list, {
        group: "board",
        animation: 120,
        draggable: ".card",
        filter: "select, button, a, input, label",
        preventOnFilter: false,
        onEnd: function (event) {
          if (event.from === event.to) return;
          var values = filterValues();
          values.stage_id = event.to.dataset.stageId;
          values.from = "board";
          window.htmx.ajax("POST", event.item.dataset.moveUrl, {
            source: event.item, target: "#board", swap: "outerHTML", values: values
          });
        }
      });
    });
  }

  document.addEventListener("htmx:load", function (event) { wire(event.detail.elt); });

  // The board refreshes itself when its pulse reports a change, but never under a
  // card being dragged or while someone types in the filters: the next pulse retries.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.id !== "board") return;
    var filters = document.getElementById("board-filters");
    var busy = document.querySelector(".sortable-chosen, .sortable-ghost") ||
      (filters && filters.contains(document.activeElement));
    if (busy) event.preventDefault();
  });
})();
