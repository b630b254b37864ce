// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  function countSelected(name) {
    var n = document.querySelectorAll('input[type=checkbox][name="' + name + '"]:checked').length;
    document.querySelectorAll('[data-count-for="' + name + '"]').forEach(function (el) {
      el.textContent = n + " selected";
    });
  }
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.matches && t.matches("[data-select-all]")) {
      var name = t.getAttribute("data-select-all");
      var scope = t.getAttribute("data-scope");
      var root = scope ? document.getElementById(scope) : document;
      root.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
        box.checked = t.checked;
      });
      countSelected(name);
    } else if (t.matches && t.matches("input[type=checkbox][name]")) {
      countSelected(t.name);
    }
  });
  // "/" focuses the page's main filter (or the order jump box), like most operations tools.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var target = document.querySelector('[data-key="/"]') || document.getElementById("jump-order");
    if (target) { ev.preventDefault(); target.focus(); target.select && target.select(); }
  });
  // Destructive buttons ask once.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button.danger");
    if (b && !window.confirm("Cancel these units? This cannot be undone.")) ev.preventDefault();
  });
  document.addEventListener("DOMContentLoaded", function () { countSelected("line"); });
})();
