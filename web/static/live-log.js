// Follows a running task's log on /view_log: asks /view_log/tail every 2 s
// for the bytes the log gained, appends them as numbered lines, and once
// the attempt has ended reloads the page, which then shows the stored log.
// Text is added as text (textContent), never as markup.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  if (!pre || !pre.dataset.tail) return;
  var size = Number(pre.dataset.size) || 0;
  var line = pre.querySelectorAll("span[data-n]").length;
  var partial = null; // the last line, while it has no newline yet
  var last = pre.lastElementChild;
  if (last && !last.textContent.endsWith("\n")) partial = last;

  function addLine(text) {
    line++;
    var s = document.createElement("span");
    s.id = "L" + line;
    s.dataset.n = line;
    s.textContent = text;
    pre.appendChild(s);
    return s;
  }

  function append(text) {
    var follow = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    var parts = text.split("\n");
    for (var i = 0; i < parts.length; i++) {
      var nl = i < parts.length - 1 ? "\n" : "";
      if (parts[i] === "" && !nl) break;
      if (partial) {
        partial.textContent += parts[i] + nl;
      } else {
        partial = addLine(parts[i] + nl);
      }
      if (nl) partial = null;
    }
    if (follow) window.scrollTo(0, document.body.scrollHeight);
  }

  function note(text) {
    var p = document.createElement("span");
    p.className = "gap";
    p.textContent = text + "\n";
    pre.appendChild(p);
    partial = null;
  }

  function poll() {
    if (document.hidden) { setTimeout(poll, 2000); return; }
    fetch(pre.dataset.tail + "&from=" + size, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (t) {
        if (!t.running) {
          var st = document.getElementById("log-state");
          if (st) st.textContent = t.state;
          location.reload();
          return;
        }
        var rt = document.getElementById("log-runtime");
        if (rt && t.runtime) rt.textContent = t.runtime;
        if (t.reset) {
          pre.textContent = ""; line = 0; partial = null;
          note("[the log was cut; showing its end]");
        } else if (t.offset > size) {
          note("[" + (t.offset - size) + " bytes written too fast to follow]");
        }
        if (t.text) append(t.text);
        size = t.size;
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
