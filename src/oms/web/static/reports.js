// The Reports page's charts, drawn with the vendored Chart.js from the figures the page embeds.
// Every chart repeats a table on the page, so the page still reads without JavaScript.
(function () {
  "use strict";
  var COLORS = ["#2457d6", "#d97706", "#137333", "#b42318", "#7c3aed", "#0e7490"];

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || !window.Chart) return;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    new window.Chart(canvas, config);
    canvas.setAttribute("data-drawn", "true");
  }

  function percentAxis() {
    return { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } } };
  }

  function pct(v) { return v === null ? null : Math.round(v * 1000) / 10; }

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("report-data");
    if (!node) return;
    var d = JSON.parse(node.textContent);

    draw("chart-age", {
      type: "bar",
      data: {
        labels: d.ages.map(function (a) { return a + " d"; }),
        datasets: [{ label: "Units waiting", data: d.ages.map(function (a) { return d.by_age[a].units; }), backgroundColor: COLORS[0] }]
      },
      options: { plugins: { legend: { display: false } } }
    });

    draw("chart-fill", {
      type: "line",
      data: {
        labels: d.fill.map(function (r) { return r[d.period]; }),
        datasets: [{ label: "Fill rate at placement", data: d.fill.map(function (r) { return pct(r.fill_rate); }),
                     borderColor: COLORS[2], backgroundColor: COLORS[2], spanGaps: true }]
      },
      options: { scales: percentAxis(), plugins: { legend: { display: false } } }
    });

    draw("chart-lead", {
      type: "bar",
      data: {
        labels: d.lead.map(function (r) { return r.measure.replace(/_/g, " ") + " (" + r.segment.replace(/_/g, " ") + ")"; }),
        datasets: ["p50", "p90", "max"].map(function (k, i) {
          return { label: k, data: d.lead.map(function (r) { return r[k]; }), backgroundColor: COLORS[i] };
        })
      },
      options: { indexAxis: "y" }
    });

    draw("chart-cancel", {
      type: "doughnut",
      data: {
        labels: d.cancel.map(function (r) { return r.reason.replace(/_/g, " "); }),
        datasets: [{ label: "Units cancelled", data: d.cancel.map(function (r) { return r.units; }), backgroundColor: COLORS.slice(0, 3) }]
      }
    });

    draw("chart-suppliers", {
      type: "bar",
      data: {
        labels: d.suppliers.map(function (r) { return r.supplier; }),
        datasets: [{ label: "On time", data: d.suppliers.map(function (r) { return pct(r.on_time_rate); }), backgroundColor: COLORS[4] }]
      },
      options: { scales: percentAxis(), plugins: { legend: { display: false } } }
    });
  });
})();
