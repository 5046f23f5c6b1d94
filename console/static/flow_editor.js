// The YAML editor: line numbers beside the text, problem lines marked in the gutter, and a
// click on a problem puts the cursor at its line and column. Without JavaScript the form
// still saves and the problems are still listed with their line.
(function () {
  "use strict";
  var text = document.getElementById("flow-text");
  var gutter = document.getElementById("gutter");
  if (!text || !gutter) { return; }
  var marks = {};
  Array.prototype.forEach.call(document.querySelectorAll("#problems li"), function (item) {
    var line = parseInt(item.getAttribute("data-line"), 10);
    if (line > 0 && marks[line] !== "bad") { marks[line] = item.classList.contains("warning") ? "warn" : "bad"; }
  });

  function draw() {
    var count = text.value.split("\n").length;
    var parts = [];
    for (var i = 1; i <= count; i++) {
      parts.push(marks[i] ? '<span class="' + marks[i] + '" id="line-' + i + '">' + i + "</span>" : String(i));
    }
    gutter.innerHTML = parts.join("\n");
    text.style.height = "auto";
    text.style.height = text.scrollHeight + "px";
  }

  function goTo(line, col) {
    var lines = text.value.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { offset += lines[i].length + 1; }
    offset += Math.max(0, (col || 1) - 1);
    text.focus();
    text.setSelectionRange(offset, offset);
    var marker = document.getElementById("line-" + line);
    if (marker && marker.scrollIntoView) { marker.scrollIntoView({ block: "center" }); }
  }

  Array.prototype.forEach.call(document.querySelectorAll("a.goto-line"), function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      goTo(parseInt(link.getAttribute("data-line"), 10), parseInt(link.getAttribute("data-col"), 10));
    });
  });
  text.addEventListener("input", draw);
  draw();
})();
