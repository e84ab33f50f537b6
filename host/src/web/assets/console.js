// Progressive enhancement only: every page works without this script.
// On the modules page, reload when the plugins folder or the lock changes,
// unless the owner is in the middle of something: a form being sent (its
// answer is the page, redrawn), or a checkbox ticked and not yet sent.
(function () {
  "use strict";
  var body = document.body;
  if (!body || body.dataset.page !== "modules") return;
  var url = body.dataset.stateUrl;
  var seen = body.dataset.state;
  var sending = false;
  document.addEventListener("submit", function () { sending = true; });
  function busy() {
    if (sending) return true;
    var ticked = document.querySelector("form input[type=checkbox]:checked");
    return ticked !== null;
  }
  function check() {
    if (busy()) return;
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (state) {
        if (state && state !== seen && !busy()) {
          window.location.replace(url.replace(/\/state$/, ""));
        }
      })
      .catch(function () {});
  }
  setInterval(check, 2000);
})();
