// The dashboard's own script: draws charts from data attributes (no inline script, so the
// page runs under a strict Content-Security-Policy) and pauses htmx polling in hidden tabs.
(function () {
  "use strict";
  var COLORS = ["#4f46e5", "#0ea5e9", "#16a34a", "#f59e0b"];

  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (Chart.getChart(canvas)) return;
      var data = JSON.parse(canvas.dataset.chartData);
      var isLine = canvas.dataset.chart === "line";
      data.datasets.forEach(function (set, i) {
        var color = COLORS[i % 2];  // a previous-period line takes its metric's colour, dashed
        set.borderColor = color;
        set.backgroundColor = isLine ? color + "22" : color;
        set.tension = 0.3;
        set.fill = isLine && i === 0;
        set.pointRadius = 0;
        if (set.dashed) { set.borderDash = [6, 4]; set.borderWidth = 1.5; set.fill = false; }
      });
      new Chart(canvas, {
        type: canvas.dataset.chart,
        data: data,
        options: {
          animation: false,
          maintainAspectRatio: false,
          indexAxis: isLine ? "x" : (canvas.dataset.chartAxis || "y"),
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { display: isLine } },
          scales: { x: { beginAtZero: true }, y: { beginAtZero: true } }
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  // A swapped-out widget's chart must be destroyed, or Chart.js keeps it alive forever.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    evt.detail.target.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = window.Chart && Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  });
  document.addEventListener("htmx:afterSettle", function (evt) { drawCharts(evt.detail.elt.parentNode || document); });
  // Poll only while the tab is visible (a CSP without unsafe-eval rules out hx-trigger filters).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (document.visibilityState !== "visible") evt.preventDefault();
  });
})();
