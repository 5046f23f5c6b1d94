// The call page's player: click a transcript turn or a waveform lane to seek; while the audio
// plays, the playhead moves and the turn being spoken is highlighted. No dependencies.
(function () {
  "use strict";
  var audio = document.getElementById("audio");
  var lanes = document.getElementById("lanes");
  var playhead = document.getElementById("playhead");
  var list = document.getElementById("transcript");
  if (!audio || !list) { return; }
  var turns = Array.prototype.slice.call(list.querySelectorAll("li.turn"));
  var current = null;

  function duration() {
    var d = audio.duration;
    if (isFinite(d) && d > 0) { return d; }
    return parseFloat(lanes ? lanes.getAttribute("data-duration") : "0") || 0;
  }

  function seek(seconds) {
    audio.currentTime = Math.max(0, seconds);
    var played = audio.play();
    if (played && played.catch) { played.catch(function () { /* autoplay refused: seeking is enough */ }); }
  }

  function highlight() {
    var t = audio.currentTime;
    var found = null;
    for (var i = 0; i < turns.length; i++) {
      var start = parseFloat(turns[i].getAttribute("data-start"));
      var end = parseFloat(turns[i].getAttribute("data-end"));
      if (t >= start && t < end) { found = turns[i]; }
    }
    if (found !== current) {
      if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
      if (found) {
        found.classList.add("current");
        found.setAttribute("aria-current", "true");
        if (found.scrollIntoView) { found.scrollIntoView({ block: "nearest" }); }
      }
      current = found;
    }
    var d = duration();
    if (playhead && d > 0) { playhead.style.left = Math.min(100, (100 * t) / d) + "%"; }
  }

  turns.forEach(function (turn) {
    function go() { seek(parseFloat(turn.getAttribute("data-start")) || 0); }
    turn.addEventListener("click", go);
    turn.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); go(); }
    });
  });
  if (lanes) {
    lanes.addEventListener("click", function (event) {
      var svg = lanes.querySelector("svg");
      if (!svg) { return; }
      var box = svg.getBoundingClientRect();
      var share = (event.clientX - box.left) / box.width;
      if (share >= 0 && share <= 1) { seek(share * duration()); }
    });
  }
  audio.addEventListener("timeupdate", highlight);
  audio.addEventListener("seeked", highlight);
})();
