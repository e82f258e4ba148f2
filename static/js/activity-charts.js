// Draws the activity charts from the JSON the page carries (<script id="activity-data">). The tables on the
// page hold the same numbers, so without JavaScript (or Chart.js) nothing is lost but the pictures.
(function () {
  "use strict";

  var LABELS = { usage: "Spend (USD)", requests: "Requests", tokens: "Tokens" };
  var charts = [];

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (value && value.trim()) || fallback;
  }

  function format(metric, value) {
    if (metric === "usage") {
      return "$" + value.toFixed(value !== 0 && Math.abs(value) < 1 ? 6 : 2);
    }
    return value.toLocaleString();
  }

  // Axis labels: three significant digits are enough ($0.06, not $0.060000).
  function formatTick(metric, value) {
    if (metric === "usage") {
      return "$" + (value === 0 ? "0" : String(Number(value.toPrecision(3))));
    }
    return value.toLocaleString();
  }

  function shortDay(iso) {
    var parts = iso.split("-");
    return parts[1] + "-" + parts[2];
  }

  // "No activity" over an empty chart instead of bare axes.
  var emptyNote = {
    id: "emptyNote",
    afterDraw: function (chart) {
      var values = chart.data.datasets[0] ? chart.data.datasets[0].data : [];
      if (values.some(function (v) { return v; })) return;
      var ctx = chart.ctx, area = chart.chartArea;
      ctx.save();
      ctx.fillStyle = cssVar("--muted", "#5f6b7a");
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText("No activity yet", (area.left + area.right) / 2, (area.top + area.bottom) / 2);
      ctx.restore();
    }
  };

  function barChart(canvas, labels, values, metric, horizontal) {
    var accent = cssVar("--accent", "#4f46e5");
    // Read by the callbacks, which already run while the chart is being built.
    var state = { metric: metric };
    var valueAxis = horizontal ? "x" : "y";
    var scales = {};
    scales[valueAxis] = {
      beginAtZero: true,
      ticks: { callback: function (v) { return formatTick(state.metric, Number(v)); }, maxTicksLimit: 6 }
    };
    scales[horizontal ? "y" : "x"] = { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
    var chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: LABELS[metric], data: values, backgroundColor: accent,
                                          borderRadius: 3, maxBarThickness: 28 }] },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (item) { return format(state.metric, item.parsed[valueAxis]); } } }
        },
        scales: scales
      },
      plugins: [emptyNote]
    });
    chart.state = state;
    canvas.dataset.drawn = "true";
    return chart;
  }

  function numbers(list) {
    return list.map(function (v) { return Number(v); });
  }

  function pick(rows, metric) {
    return rows.map(function (row) { return Number(row[metric]); });
  }

  function init() {
    var source = document.getElementById("activity-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    var metric = "usage";
    var parts = [];

    var daily = document.getElementById("chart-daily");
    if (daily) {
      parts.push({ chart: barChart(daily, data.days.map(shortDay), numbers(data.series[metric]), metric, false),
                   values: function (m) { return numbers(data.series[m]); } });
    }
    [["chart-models", data.models], ["chart-workspaces", data.workspaces]].forEach(function (pair) {
      var canvas = document.getElementById(pair[0]);
      var rows = pair[1] || [];
      if (!canvas) return;
      var labels = rows.map(function (row) { return row.label; });
      parts.push({ chart: barChart(canvas, labels, pick(rows, metric), metric, true),
                   values: function (m) { return pick(rows, m); } });
    });
    charts = parts;

    var group = document.querySelector("[data-metric-switch]");
    if (!group) return;
    group.hidden = false;
    group.addEventListener("click", function (event) {
      var button = event.target.closest("[data-metric]");
      if (!button) return;
      var chosen = button.dataset.metric;
      group.querySelectorAll("[data-metric]").forEach(function (b) {
        var on = b === button;
        b.setAttribute("aria-pressed", on ? "true" : "false");
        b.classList.toggle("button-secondary", !on);
      });
      charts.forEach(function (part) {
        part.chart.state.metric = chosen;
        part.chart.data.datasets[0].data = part.values(chosen);
        part.chart.data.datasets[0].label = LABELS[chosen];
        part.chart.update();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
