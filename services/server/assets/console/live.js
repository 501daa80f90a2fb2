// A page that follows what changes (its <main data-live="...">) listens to the server's events
// and fetches itself again when something changed, unless a form on it is being filled in:
// then it says so and leaves the reload to the person. After a lost connection, it reloads.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) { return; }
  var source = new EventSource(main.getAttribute("data-live"));
  // The page's own address: after a refused form the browser shows the form's, which only
  // takes a POST.
  var page = main.getAttribute("data-page") || window.location.href;
  var lost = false;

  function reload() { window.location.assign(page); }

  function typing() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== "submit") {
      return true;
    }
    var fields = main.querySelectorAll("textarea, input[type=text], input[type=date]");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) { return true; }
    }
    return false;
  }

  function refresh() {
    if (typing()) {
      var notice = document.getElementById("changed-notice");
      if (notice) { notice.hidden = false; }
      return;
    }
    fetch(page, { credentials: "same-origin" })
      .then(function (response) {
        // Signed out meanwhile: the page the server sent us to.
        if (!response.ok || response.redirected) { reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var current = document.querySelector("main");
        if (fresh && current) { current.replaceWith(fresh); } else { reload(); }
      })
      .catch(function () { reload(); });
  }

  source.addEventListener("changed", refresh);
  source.addEventListener("ended", function () { source.close(); reload(); });
  source.onerror = function () { lost = true; };
  source.onopen = function () { if (lost) { reload(); } };
})();
