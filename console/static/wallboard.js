// The wallboard updates itself: the server sends the board's HTML whenever its numbers change.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.EventSource) { return; }
  var dot = document.getElementById("live-dot");
  var text = document.getElementById("live-text");
  var source = new EventSource(board.getAttribute("data-events"));
  function live(on, label) {
    if (dot) { dot.className = on ? "live-dot on" : "live-dot"; }
    if (text) { text.textContent = label; }
  }
  source.addEventListener("open", function () { live(true, "live"); });
  source.addEventListener("error", function () { live(false, "reconnecting"); });
  source.addEventListener("board", function (event) {
    board.innerHTML = event.data;
    live(true, "live");
  });
  source.addEventListener("gone", function (event) {
    source.close();
    live(false, event.data || "stopped");
  });
}());
