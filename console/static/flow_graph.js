// Draws the flow's Mermaid source (server-generated, every label quoted) as an SVG with the
// vendored mermaid.min.js (no CDN). The 5 MB library is fetched after the page has loaded, so
// the editor is usable at once and the graph follows. The outcome is left on #graph as
// data-rendered="ok" or "error" so a person (and the browser test) can tell a drawing from a
// failure, whose reason is shown under the graph.
(function () {
  "use strict";
  var graph = document.getElementById("graph");
  var source = document.getElementById("mermaid-source");
  var problem = document.getElementById("graph-error");
  if (!graph || !source) { return; }

  function fail(reason) {
    graph.setAttribute("data-rendered", "error");
    if (problem) {
      problem.hidden = false;
      problem.textContent = "The graph could not be drawn: " + reason;
    }
  }

  function draw() {
    if (typeof mermaid === "undefined") { fail("mermaid.min.js did not load"); return; }
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      flowchart: { htmlLabels: false, useMaxWidth: false }
    });
    mermaid.run({ nodes: [source], suppressErrors: false }).then(function () {
      if (source.querySelector("svg")) { graph.setAttribute("data-rendered", "ok"); } else { fail("no drawing"); }
    }).catch(function (error) { fail(error && error.message ? error.message : String(error)); });
  }

  function load() {
    var script = document.createElement("script");
    script.src = graph.getAttribute("data-mermaid") || "/static/vendor/mermaid.min.js";
    script.onload = draw;
    script.onerror = function () {
      fail(script.src + " is missing: scripts/setup.sh installs it from console/static/vendor/package-lock.json");
    };
    document.head.appendChild(script);
  }

  if (document.readyState === "complete") { load(); } else { window.addEventListener("load", load); }
})();
