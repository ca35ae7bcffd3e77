// Keeps a page of a running job (or the fleet) current without reloading
// it: the page's [data-live-region] elements (each with an id) are
// replaced by those of a fresh copy of the page.
//
//   <main data-live-job="JOB_ID">  asks /api/v1/jobs/JOB_ID every 2 s and
//       refreshes the regions when the job changed; once the job has ended
//       it refreshes them a last time and stops. A page of a job that has
//       ended leaves the attribute out and polls nothing.
//   <main data-live-page="SECONDS">  refreshes the regions every SECONDS
//       (at least 2).
//
// Nothing is asked while the page is hidden. Include it with
//   <script src="/static/live-refresh.js" defer></script>
(function () {
  "use strict";
  var jobEl = document.querySelector("[data-live-job]");
  var pageEl = document.querySelector("[data-live-page]");
  if (!jobEl && !pageEl) return;

  function refresh() {
    return fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh) old.replaceWith(document.importNode(fresh, true));
        });
        if (doc.title) document.title = doc.title;
      });
  }

  function later(f, ms) { setTimeout(function () { document.hidden ? later(f, ms) : f(); }, ms); }

  if (jobEl) {
    var id = jobEl.getAttribute("data-live-job");
    var last = null, refreshed = Date.now();
    var poll = function () {
      fetch("/api/v1/jobs/" + encodeURIComponent(id), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) {
          var now = JSON.stringify(job);
          var ended = job.status === "finished";
          // Running tasks' runtimes grow with no change to the job: the
          // regions are refreshed at least every 10 s meanwhile.
          var due = ended || (last !== null && now !== last) || Date.now() - refreshed >= 10000;
          last = now;
          if (!due) { later(poll, 2000); return; }
          refreshed = Date.now();
          return refresh().then(function () {
            if (ended) { jobEl.removeAttribute("data-live-job"); return; }
            later(poll, 2000);
          });
        })
        .catch(function () { later(poll, 5000); });
    };
    later(poll, 2000);
  } else {
    var every = Math.max(2, Number(pageEl.getAttribute("data-live-page")) || 5) * 1000;
    var tick = function () { refresh().then(function () { later(tick, every); }, function () { later(tick, every * 2); }); };
    later(tick, every);
  }
})();
