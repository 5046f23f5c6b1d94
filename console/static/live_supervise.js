// Listen / Barge / Take over without leaving the page: the board is redrawn by the live feed,
// so one listener on the document handles every call's buttons; the request and the engine's
// answer are shown above the board. Without this script the forms post and come back to /live.
(function () {
  "use strict";
  var panel = document.getElementById("supervise-panel");
  var result = document.getElementById("supervise-result");
  var token = document.querySelector('meta[name="csrf-token"]');
  if (!panel || !result || !window.fetch || !token) { return; }
  var labels = { listen: "Listen", barge: "Barge", takeover: "Take over" };
  function show(kind, text) {
    result.className = kind;
    result.textContent = text;
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("supervise")) { return; }
    event.preventDefault();
    var button = event.submitter;
    var mode = button ? button.value : "listen";
    var body = new URLSearchParams();
    body.set("call_id", form.elements.call_id.value);
    body.set("mode", mode);
    var phone = document.getElementById("supervise-phone");
    if (phone && phone.value) { body.set("uri", phone.value); }
    show("pending", (labels[mode] || mode) + " on call " + form.elements.call_id.value + ": asking the engine…");
    fetch(panel.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": token.getAttribute("content") },
      body: body
    }).then(function (answer) {
      var type = answer.headers.get("content-type") || "";
      if (type.indexOf("application/json") === 0) {
        return answer.json().then(function (reply) {
          show(reply.ok ? "ringing" : "refused", reply.message);
        });
      }
      return answer.text().then(function (text) {
        show("refused", "refused (HTTP " + answer.status + "): " + text.slice(0, 300));
      });
    }).catch(function (error) {
      show("refused", "the console did not answer: " + error);
    });
  });
}());
