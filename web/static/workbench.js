// The workbench's behaviour beyond htmx: the bearer token (session storage, never a URL),
// errors the API answers as OperationOutcome, evidence highlighting, file reading, downloads.
(function () {
  "use strict";
  var TOKEN = "jointcoder.token";
  function token() { return sessionStorage.getItem(TOKEN) || ""; }
  function authHeaders() { var t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
  function alertBox() { return document.getElementById("alerts"); }
  function say(text) {
    var box = alertBox();
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  }

  var USER = "jointcoder.reviewer";
  document.addEventListener("htmx:configRequest", function (e) {
    var t = token();
    if (t) e.detail.headers["Authorization"] = "Bearer " + t;
    var name = sessionStorage.getItem(USER);
    if (name) e.detail.headers["X-Jointcoder-User"] = encodeURIComponent(name);
  });
  // With authentication off, the reviewer's name (kept for this tab) goes with each review.
  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("reviewer-name");
    if (!input) return;
    input.value = sessionStorage.getItem(USER) || "";
    input.addEventListener("change", function () {
      var v = input.value.trim();
      if (v) sessionStorage.setItem(USER, v); else sessionStorage.removeItem(USER);
    });
  });
  document.addEventListener("htmx:beforeRequest", function () { say(""); });

  // The guard answers refusals as FHIR OperationOutcome JSON: shown, never swapped in.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("json") >= 0) {
      e.detail.shouldSwap = false;
      var text = xhr.statusText;
      try {
        var oo = JSON.parse(xhr.responseText);
        text = (oo.issue || []).map(function (i) { return i.diagnostics || i.code; }).join("; ") || text;
      } catch (_) {}
      say(xhr.status + ": " + text);
      if (xhr.status === 401) {
        var d = document.getElementById("token-dialog");
        if (d && !d.open) d.showModal();
      }
    }
  });

  document.addEventListener("submit", function (e) {
    if (e.target.id !== "token-form") return;
    e.preventDefault();
    var value = e.target.querySelector("input[name=token]").value.trim();
    if (value) sessionStorage.setItem(TOKEN, value); else sessionStorage.removeItem(TOKEN);
    document.getElementById("token-dialog").close();
    htmx.ajax("GET", "/ui/whoami", { target: "#who", swap: "innerHTML" });
  });

  // Evidence: the span of the record text a code came from, marked and scrolled to.
  function clearMarks(scope) {
    scope.querySelectorAll("pre.sec[data-plain]").forEach(function (pre) {
      pre.textContent = pre.dataset.plain;
      delete pre.dataset.plain;
    });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button.ev");
    if (!b) return;
    var scope = b.closest(".case") || document;
    clearMarks(scope);
    var pre = scope.querySelector('pre.sec[data-section="' + b.dataset.section + '"]');
    if (!pre) { say(b.dataset.missing || ""); return; }
    var chars = Array.from(pre.textContent);
    var start = Math.min(+b.dataset.start, chars.length), end = Math.min(+b.dataset.end, chars.length);
    pre.dataset.plain = pre.textContent;
    pre.textContent = "";
    pre.appendChild(document.createTextNode(chars.slice(0, start).join("")));
    var mark = document.createElement("mark");
    mark.className = "evidence";
    mark.textContent = chars.slice(start, end).join("");
    pre.appendChild(mark);
    pre.appendChild(document.createTextNode(chars.slice(end).join("")));
    mark.scrollIntoView({ block: "center" });
  });

  // A chosen file is read here and sent as a form field (base64), with its name.
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (input.type !== "file" || !input.files.length) return;
    var form = input.form, file = input.files[0], reader = new FileReader();
    var submit = form.querySelector("button[type=submit]");
    if (submit) submit.disabled = true;
    reader.onload = function () {
      form.querySelector("input[name=file_name]").value = file.name;
      form.querySelector("input[name=file_b64]").value = String(reader.result).split(",")[1] || "";
      if (submit) submit.disabled = false;
    };
    reader.readAsDataURL(file);
  });

  // Downloads carry the token too, so they are fetched here and saved from memory.
  document.addEventListener("click", function (e) {
    var a = e.target.closest("[data-download]");
    if (!a) return;
    e.preventDefault();
    var form = a.closest("form");
    var params = form ? new URLSearchParams(new FormData(form)).toString() : "";
    var url = a.dataset.download + (params ? (a.dataset.download.indexOf("?") >= 0 ? "&" : "?") + params : "");
    fetch(url, { headers: authHeaders() }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { say(r.status + ": " + t); });
      return r.blob().then(function (blob) {
        var link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = a.dataset.filename;
        document.body.appendChild(link);
        link.click();
        link.remove();
      });
    });
  });
})();
