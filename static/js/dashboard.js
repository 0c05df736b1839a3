// The dashboard's own script. Charts are drawn from data attributes (no inline script, so pages
// run under a strict Content-Security-Policy) and updated in place when htmx brings a widget's
// new version: the chart keeps its canvas, so it never blanks and an open tooltip stays.
// Also: choosing a metric or a tab, copy buttons, "All columns", and no polling in hidden tabs
// or while the server pushes.
//
// The words it shows come from the page, in the page's language: the charts' from their data
// (charts.main_chart: a metric's "title" and "previous_label", "no_value"; a donut's "others"),
// the buttons' from data-* attributes on the button or an element around it (data-copied,
// data-selected, data-all-columns, data-key-columns). The English here is only a fallback.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";

  // A word the page gives in a data-* attribute of the element or of one around it.
  function word(element, name, fallback) {
    var holder = element.closest("[data-" + name + "]");
    return holder ? holder.getAttribute("data-" + name) : fallback;
  }
  // data-chart-id -> Chart, so a refreshed widget's canvas can take over the old chart. Not the
  // canvas's id: htmx copies an old element's attributes onto a new one of the same id while it
  // settles, and the style Chart.js set on the old canvas would then be an inline style the CSP refuses.
  var charts = {};
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function palette() {
    return [css("--chart-1"), css("--chart-2"), "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#64748b"];
  }
  function dataOf(canvas) { return JSON.parse(canvas.dataset.chartData); }

  // -- what each kind of chart draws
  function lineDatasets(data, bar) {
    var colors = palette();
    return data.datasets.map(function (set, i) {
      var color = colors[i % 2];
      return { label: set.label, data: set.data, borderColor: color, backgroundColor: bar ? color : color + "22",
               fill: !bar && i === 0, tension: 0.15, pointRadius: 0, borderWidth: 2,
               segment: dashedAfter(data.current) };
    });
  }

  // The bucket still counting is drawn dotted: it is not a drop, only not over yet.
  function dashedAfter(current) {
    return { borderDash: function (ctx) {
      return current !== null && current !== undefined && ctx.p1DataIndex >= current ? [3, 3] : undefined;
    } };
  }

  function mainDatasets(data) {
    var m = data.metrics[data.selected], color = css("--chart-1");
    var sets = [{ label: m.label, data: m.data || [], borderColor: color, backgroundColor: color + "22", fill: true,
                  tension: 0.15, pointRadius: 0, pointHoverRadius: 4, borderWidth: 2, segment: dashedAfter(data.current) }];
    if (m.previous) {
      sets.push({ label: m.previous_label || m.label + ", previous period", data: m.previous, borderColor: css("--muted"),
                  borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, fill: false, tension: 0.15 });
    }
    return sets;
  }

  // A duration's part in the page's language: 2m, 24s (2분, 24초).
  function timeUnit(n, unit) {
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: unit, unitDisplay: "narrow" }).format(n);
    } catch (e) {
      return n + (unit === "minute" ? "m" : "s");
    }
  }

  // A figure as the page writes it: 1,234 · 2.41 · 34.7% · 2m 24s; `none` when there is none.
  function format(value, unit, none) {
    if (value === null || value === undefined) return none || "no visits";
    if (unit === "percent") return value.toFixed(1) + "%";
    if (unit === "ratio") return value.toFixed(2);
    if (unit === "seconds") {
      var s = Math.round(value);
      return s < 60 ? timeUnit(s, "second") : timeUnit(Math.floor(s / 60), "minute") + " " + timeUnit(s % 60, "second");
    }
    return Math.round(value).toLocaleString(lang);
  }

  function scales(unit) {
    var grid = { color: css("--chart-grid") }, color = css("--chart-text");
    var ticks = { color: color, precision: unit === "count" || !unit ? 0 : undefined };
    if (unit) ticks.callback = function (value) { return format(value, unit); };
    return {
      x: { grid: { display: false }, ticks: { color: color, maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
      y: { beginAtZero: true, grid: grid, ticks: ticks }
    };
  }

  function config(kind, data) {
    var base = { animation: reduceMotion ? false : { duration: 250 }, maintainAspectRatio: false, responsive: true };
    if (kind === "main") {
      var unit = data.metrics[data.selected].unit;
      return { type: "line", data: { labels: data.labels, datasets: mainDatasets(data) }, options: Object.assign(base, {
        interaction: { mode: "index", intersect: false }, scales: scales(unit),
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          title: function (items) { return items.length ? data.titles[items[0].dataIndex] : ""; },
          label: function (item) { return item.dataset.label + ": " + format(item.parsed.y, unit, data.no_value); } } } } }) };
    }
    if (kind === "donut") {
      var labels = data.labels.slice(), values = data.data.slice();
      if (data.other) { labels.push(data.others || "Others"); values.push(data.other); }
      return { type: "doughnut", data: { labels: labels, datasets: [{ label: data.label, data: values,
        backgroundColor: palette(), borderColor: css("--card"), borderWidth: 2 }] },
        options: Object.assign(base, { cutout: "62%", plugins: { legend: { position: "right",
          labels: { color: css("--chart-text"), boxWidth: 12 } } } }) };
    }
    if (kind === "spark") {
      var c = css("--chart-1");
      return { type: "line", data: { labels: data.data.map(function (_, i) { return i; }), datasets: [{ data: data.data,
        borderColor: c, backgroundColor: c + "22", fill: true, pointRadius: 0, borderWidth: 1.5, tension: 0.2 }] },
        options: Object.assign(base, { animation: false, events: [], plugins: { legend: { display: false }, tooltip: { enabled: false } },
          scales: { x: { display: false }, y: { display: false, beginAtZero: true } } }) };
    }
    var bar = kind === "bar";
    return { type: bar ? "bar" : "line", data: { labels: data.labels, datasets: lineDatasets(data, bar) },
      options: Object.assign(base, { interaction: { mode: "index", intersect: false }, scales: scales("count"),
        plugins: { legend: { display: true, labels: { color: css("--chart-text"), boxWidth: 12 } } } }) };
  }

  // New data into a drawn chart, without redrawing it from nothing.
  function update(chart, kind, data) {
    var fresh = config(kind, data);
    chart.data.labels = fresh.data.labels;
    fresh.data.datasets.forEach(function (set, i) {
      if (chart.data.datasets[i]) Object.assign(chart.data.datasets[i], set); else chart.data.datasets.push(set);
    });
    chart.data.datasets.length = fresh.data.datasets.length;
    if (kind === "main") {  // the metric's unit: its axis and tooltip
      chart.options.scales.y.ticks = fresh.options.scales.y.ticks;
      chart.options.plugins.tooltip.callbacks = fresh.options.plugins.tooltip.callbacks;
    }
    chart.update("none");
  }

  function draw(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var kind = canvas.dataset.chart;
      if (kind === "map") { if (window.LiveInsightMap) takeOver(canvas, true) || window.LiveInsightMap.draw(canvas.parentNode); return; }
      if (Chart.getChart(canvas) || takeOver(canvas, false)) return;
      charts[canvas.dataset.chartId] = new Chart(canvas, config(kind, dataOf(canvas)));
    });
    forgetDetached();
  }

  // A refreshed widget brings a new canvas: put the old one (and its chart) in its place instead.
  function takeOver(canvas, isMap) {
    var id = canvas.dataset.chartId, old = id && charts[id];
    if (isMap && !old && Chart.getChart(canvas)) { charts[id] = Chart.getChart(canvas); return true; }  // drawn by map.js
    if (!old || document.body.contains(old.canvas)) return false;
    var data = dataOf(canvas);
    old.canvas.dataset.chartData = canvas.dataset.chartData;
    canvas.replaceWith(old.canvas);
    if (isMap) window.LiveInsightMap.update(old.canvas, data); else update(old, old.canvas.dataset.chart, data);
    return true;
  }

  function forgetDetached() {
    Object.keys(charts).forEach(function (id) {
      if (!document.body.contains(charts[id].canvas)) { charts[id].destroy(); delete charts[id]; }
    });
  }

  function remember(root) {  // charts the map script drew, so a refresh can hand them over
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = window.Chart && Chart.getChart(canvas);
      if (chart && canvas.dataset.chartId) charts[canvas.dataset.chartId] = chart;
    });
  }

  // -- the overview: choose the charted metric; one the chart's data has is drawn without a request
  function pickMetric(link) {
    var name = link.dataset.metric, canvas = document.querySelector('canvas[data-chart-id="main"]');
    var widget = document.getElementById("w-chart");
    if (!canvas || !widget || !window.htmx) return false;
    document.querySelectorAll(".metric").forEach(function (m) { m.classList.toggle("selected", m.dataset.metric === name); });
    document.querySelectorAll("a.metric-pick").forEach(function (a) {
      if (a.dataset.metric === name) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    });
    setParam("metric", name);
    var data = dataOf(canvas);
    if (!data.metrics[name]) {  // fetched: the widget's request carries the page's metric
      htmx.ajax("GET", widget.getAttribute("hx-get"), { target: widget, swap: "outerHTML" });
      return true;
    }
    data.selected = name;
    canvas.dataset.chartData = JSON.stringify(data);
    var chart = Chart.getChart(canvas);
    if (chart) update(chart, "main", data);
    var title = document.getElementById("w-chart-title");
    if (title) title.textContent = data.metrics[name].title || data.metrics[name].label + " per " + data.interval;
    return true;
  }

  function setParam(key, value) {
    var url = new URL(window.location.href);
    url.searchParams.set(key, value);
    history.replaceState(null, "", url);
  }

  // -- tabs: the chosen one is marked; arrow keys move between them
  function chooseTab(tab) {
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      if (on) t.removeAttribute("tabindex"); else t.setAttribute("tabindex", "-1");
    });
    var panel = document.getElementById(tab.getAttribute("aria-controls"));
    if (panel) panel.setAttribute("aria-labelledby", tab.id);
    var card = tab.closest(".panel-card");
    if (card) setParam(card.id.replace(/^panel-/, "") + "_tab", tab.id.replace(/^tab-/, ""));
  }

  document.addEventListener("click", function (evt) {
    var target = evt.target.closest("a.metric-pick, [role=tab], [data-copy], button.all-columns");
    if (!target) return;
    if (target.matches("a.metric-pick")) { if (pickMetric(target)) evt.preventDefault(); }
    else if (target.matches("[role=tab]")) { chooseTab(target); }  // htmx fetches the tab's widget
    else if (target.matches("[data-copy]")) { copy(target); }
    else { toggleColumns(target); }
  });

  document.addEventListener("keydown", function (evt) {
    var tab = evt.target.closest && evt.target.closest("[role=tab]");
    if (!tab || (evt.key !== "ArrowRight" && evt.key !== "ArrowLeft")) return;
    var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    var next = tabs[(tabs.indexOf(tab) + (evt.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    next.click();
    evt.preventDefault();
  });

  function copy(button) {
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    var text = source.textContent.trim(), label = button.textContent;
    var done = function () {
      button.textContent = word(button, "copied", "Copied ✓");
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, selectOnly); }
    else { selectOnly(); }
    function selectOnly() {  // no clipboard (plain http): select the text for the user to copy
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = word(button, "selected", "Selected: press Ctrl+C");
      setTimeout(function () { button.textContent = label; }, 3000);
    }
  }

  function toggleColumns(button) {
    var card = button.closest("section");
    var on = card.classList.toggle("all-columns-on");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? word(button, "key-columns", "Key columns") : word(button, "all-columns", "All columns");
  }

  function enhance(root) {
    root.querySelectorAll("button.all-columns[hidden]").forEach(function (b) {
      if (b.closest("section").querySelector("th.optional")) b.hidden = false;
    });
    remember(root);
    draw(root);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  // Before a swap, note what is drawn (the map draws late, on its own): the new canvas takes it over.
  document.addEventListener("htmx:beforeSwap", function (evt) { remember(evt.detail.target); });
  document.addEventListener("htmx:oobBeforeSwap", function (evt) { remember(evt.detail.target); });
  document.addEventListener("htmx:afterSettle", function () { enhance(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { enhance(document); });
  // Widgets keep the page's chart choice when they refresh (their URLs hold the one the page
  // was drawn with; a tap may have changed it since).
  document.addEventListener("htmx:configRequest", function (evt) {
    var metric = new URL(window.location.href).searchParams.get("metric");
    if (!metric || evt.detail.verb !== "get") return;
    var url = new URL(evt.detail.path, window.location.href);
    url.searchParams.set("metric", metric);
    evt.detail.path = url.pathname + url.search;
  });
  // Poll only while the tab is visible (a CSP without unsafe-eval rules out hx-trigger filters),
  // and not while the server pushes to the element (its stream or socket open): polling is the
  // fallback. A push comes when events are folded; with none for IDLE_MS the page asks anyway,
  // since "visitors now" also falls as time passes.
  var IDLE_MS = 30000;
  function fresh(elt) { elt.dataset.freshAt = String(Date.now()); }
  document.addEventListener("htmx:sseOpen", function (evt) { evt.target.dataset.streaming = "1"; fresh(evt.target); });
  document.addEventListener("htmx:sseMessage", function (evt) { fresh(evt.target); });
  document.addEventListener("htmx:sseError", function (evt) { delete evt.target.dataset.streaming; });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    var pushed = elt.dataset.streaming && Date.now() - Number(elt.dataset.freshAt || 0) < IDLE_MS;
    if (document.visibilityState !== "visible" || pushed) evt.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.successful) fresh(evt.detail.elt);
  });

  // AWS: the realtime page connects to the WebSocket API (app/live_sockets.py) with a ticket
  // the app signs for each connection; each message is a snapshot, swapped as a poll's.
  // The server closes a socket after some minutes: the page connects again at once.
  function liveSocket(elt) {
    var wait = 1000;
    function again() {
      delete elt.dataset.streaming;
      setTimeout(open, wait);
      wait = Math.min(wait * 2, 60000);
    }
    function open() {
      fetch(elt.dataset.liveSocket, {credentials: "same-origin"}).then(function (answer) {
        if (!answer.ok) throw new Error("no ticket: " + answer.status);
        return answer.json();
      }).then(function (data) {
        var socket = new WebSocket(data.url);
        socket.onopen = function () { wait = 1000; elt.dataset.streaming = "1"; fresh(elt); };
        socket.onmessage = function (evt) { htmx.swap(elt, evt.data, {swapStyle: "none"}); fresh(elt); };
        socket.onclose = again;
      }).catch(again);
    }
    open();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-socket]").forEach(liveSocket);
  });
})();
