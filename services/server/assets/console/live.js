// A page that follows what changes (its <main data-live="...">) listens to the server's events
// and swaps in its main part afresh when something changed (with htmx, which is loaded with
// every page; a plain fetch if it is not), unless a form on it is being filled in: then it
// says so and leaves the reload to the person. After a lost connection, it reloads.
(function () {
  "use strict";
  // A part htmx could not fetch (the server failed, or the network): the whole page instead,
  // which says what went wrong.
  function whole(event) {
    var info = event.detail && event.detail.pathInfo;
    var path = info && (info.finalRequestPath || info.requestPath);
    window.location.assign(path || window.location.href);
  }
  document.addEventListener("htmx:responseError", whole);
  document.addEventListener("htmx:sendError", whole);

  var first = document.querySelector("main[data-live]");
  if (!first || !window.EventSource) { return; }
  var source = new EventSource(first.getAttribute("data-live"));
  var lost = false;

  // The page's own address (the main part may have been swapped since, by a filter or a page
  // link): after a refused form the browser shows the form's, which only takes a POST.
  function page() {
    var main = document.querySelector("main");
    return (main && main.getAttribute("data-page")) || window.location.href;
  }

  function reload() { window.location.assign(page()); }

  function typing() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== "submit") {
      return true;
    }
    var main = document.querySelector("main");
    var fields = main ? main.querySelectorAll("textarea, input[type=text], input[type=date]") : [];
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) { return true; }
    }
    return false;
  }

  function refreshWithFetch() {
    fetch(page(), { credentials: "same-origin" })
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

  function refresh() {
    if (typing()) {
      var notice = document.getElementById("changed-notice");
      if (notice) { notice.hidden = false; }
      return;
    }
    if (!window.htmx) { refreshWithFetch(); return; }
    // A session that ended meanwhile answers htmx with HX-Redirect to the sign-in page.
    window.htmx
      .ajax("GET", page(), { target: "main", select: "main", swap: "outerHTML" })
      .catch(function () { reload(); });
  }

  source.addEventListener("changed", refresh);
  source.addEventListener("ended", function () { source.close(); reload(); });
  source.onerror = function () { lost = true; };
  source.onopen = function () { if (lost) { reload(); } };
})();
