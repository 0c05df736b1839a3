// World map of a figure by country: a chartjs-chart-geo choropleth drawn from data attributes
// (no inline script, no eval: it runs under the app's strict Content-Security-Policy).
//
// Needs, loaded before it: static/vendor/charts-*.min.js (vendor/charts-entry.js: Chart.js with
// the choropleth controller registered, and window.ChartGeo with ChartGeo.topojson.feature).
//
//   <canvas data-chart="map" data-chart-data='{"label": "Visitors",
//     "rows": [{"id": "410", "name": "South Korea", "value": 12}],
//     "topology": "/static/vendor/world-atlas-2.0.2-countries-110m.json"}'></canvas>
//
// rows[].id is the ISO 3166-1 numeric code as three digits (world-atlas's feature ids; see
// app/dashboard/countries.py numeric_id); name is optional (the atlas's English name otherwise).
// The page gives its words in its own language (lang on <html> formats the numbers):
// "format": "{n} visitors" writes a country's figure in the tooltip ({n} the number, where the
// language puts it); else "units": {"one": "visitor", "other": "visitors"} follow the number
// (by default the label in lower case). "names": {"410": "대한민국", ...} names the countries
// that have no row (the atlas's English name otherwise). Countries without a row are drawn
// light and count 0.
//
// window.LiveInsightMap.draw(root)        draws every map canvas under root not drawn yet
// window.LiveInsightMap.update(canvas, d) new data (object or JSON text) for a drawn map, in place
(function () {
  "use strict";
  var FALLBACK_ACCENT = "#4f46e5";
  var FALLBACK_EMPTY = "#eef0f4";
  var FALLBACK_LINE = "#ffffff";
  var ANTARCTICA = "010";  // a fifth of a world map's height, and no visitors
  var topologies = {};     // topology URL -> Promise of its country features, fetched once
  var states = new WeakMap();  // canvas -> {data: the latest data, chart: once drawn}

  function parse(data) {
    if (typeof data === "string") data = JSON.parse(data);
    if (!data || typeof data !== "object") throw new TypeError("map data must be an object");
    return data;
  }

  function features(url) {
    if (!topologies[url]) {
      topologies[url] = fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) throw new Error("map topology " + url + ": HTTP " + response.status);
        return response.json();
      }).then(function (topology) {
        var objects = topology.objects;
        var countries = objects.countries || objects[Object.keys(objects)[0]];
        return ChartGeo.topojson.feature(topology, countries).features.filter(function (feature) {
          return feature.id !== ANTARCTICA;
        });
      });
      topologies[url].catch(function () { delete topologies[url]; });  // a later draw retries
    }
    return topologies[url];
  }

  // The CSS colour of a custom property (any syntax) as [r, g, b], read back from a pixel.
  function cssColor(element, property, fallback) {
    var value = getComputedStyle(element).getPropertyValue(property).trim() || fallback;
    var context = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    context.fillStyle = fallback;
    context.fillStyle = value;  // an invalid colour leaves the fallback
    context.fillRect(0, 0, 1, 1);
    var pixel = context.getImageData(0, 0, 1, 1).data;
    return [pixel[0], pixel[1], pixel[2]];
  }

  function rgb(color) { return "rgb(" + color.join(",") + ")"; }

  // From a light tint of the accent (few) to the accent (most); the square root lifts the many
  // small counts off the floor, which one big country would otherwise flatten.
  function interpolator(accent) {
    var light = accent.map(function (c) { return Math.round(c + (255 - c) * 0.82); });
    return function (t) {
      var s = Math.sqrt(Math.min(1, Math.max(0, t)));
      return rgb(light.map(function (c, i) { return Math.round(c + (accent[i] - c) * s); }));
    };
  }

  function valuesById(data) {
    var values = {};
    (data.rows || []).forEach(function (row) {
      if (row && row.id != null) values[String(row.id)] = row;
    });
    return values;
  }

  function points(featureList, data) {
    var rows = valuesById(data);
    return featureList.map(function (feature) {
      var row = rows[String(feature.id)];
      return { feature: feature, value: row && isFinite(row.value) ? Number(row.value) : null };
    });
  }

  function names(featureList, data) {
    var rows = valuesById(data), named = data.names || {};
    return featureList.map(function (feature) {
      var row = rows[String(feature.id)];
      return (row && row.name) || named[String(feature.id)] || feature.properties.name;
    });
  }

  function tooltipLabel(canvas) {
    var lang = document.documentElement.lang || undefined;
    var numbers = new Intl.NumberFormat(lang);
    var plurals = new Intl.PluralRules(lang);
    return function (item) {
      var data = states.get(canvas).data;
      var value = item.raw && item.raw.value != null ? item.raw.value : 0;
      if (typeof data.format === "string" && data.format.indexOf("{n}") >= 0) {
        return item.chart.data.labels[item.dataIndex] + ": " + data.format.replace("{n}", numbers.format(value));
      }
      var units = data.units || {};
      var unit = units[plurals.select(value)] || units.other || String(data.label || "").toLocaleLowerCase(lang);
      return item.chart.data.labels[item.dataIndex] + ": " + numbers.format(value) + (unit ? " " + unit : "");
    };
  }

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function create(canvas, state, featureList) {
    var data = state.data;
    var accent = cssColor(canvas, "--accent", FALLBACK_ACCENT);
    state.chart = new Chart(canvas, {
      type: "choropleth",
      data: {
        labels: names(featureList, data),
        datasets: [{
          label: data.label || "",
          data: points(featureList, data),
          borderColor: rgb(cssColor(canvas, "--card", FALLBACK_LINE)),
          borderWidth: 0.5,
          hoverBorderColor: rgb(accent),
          hoverBorderWidth: 1.5
        }]
      },
      options: {
        animation: reducedMotion() ? false : { duration: 400 },
        maintainAspectRatio: false,  // fill the box the page gives it
        showOutline: false,
        showGraticule: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: function () { return ""; }, label: tooltipLabel(canvas) } }
        },
        scales: {
          projection: { axis: "x", projection: "equalEarth" },
          color: {
            axis: "x",
            min: 0,  // one country with data gets the full accent, not "missing"
            bounds: "data",  // the top country gets the full accent, not a rounded-up tick's share
            interpolate: interpolator(accent),
            missing: rgb(cssColor(canvas, "--map-empty", FALLBACK_EMPTY)),
            legend: { position: "bottom-left", align: "right", length: 120, width: 36, indicatorWidth: 8, margin: 4 },
            ticks: { maxTicksLimit: 3, precision: 0 }
          }
        }
      }
    });
    state.features = featureList;
  }

  function drawOne(canvas) {
    if (states.has(canvas) || (window.Chart && Chart.getChart(canvas))) return;  // drawn or drawing
    var state;
    try {
      state = { data: parse(canvas.dataset.chartData) };
    } catch (error) {
      console.error("LiveInsightMap: bad data-chart-data", error);
      return;
    }
    if (!state.data.topology) { console.error("LiveInsightMap: data-chart-data has no topology URL"); return; }
    states.set(canvas, state);
    features(state.data.topology).then(function (featureList) {
      if (states.get(canvas) !== state || !canvas.isConnected) return;  // swapped out meanwhile
      create(canvas, state, featureList);
    }).catch(function (error) {
      states.delete(canvas);
      console.error("LiveInsightMap:", error);
    });
  }

  function draw(root) {
    if (!window.Chart || !window.ChartGeo) return;
    (root || document).querySelectorAll('canvas[data-chart="map"]').forEach(drawOne);
  }

  // New values for a map, in place: no new chart, so a refresh does not blank it.
  function update(canvas, data) {
    var state = states.get(canvas);
    data = parse(data);
    canvas.dataset.chartData = JSON.stringify(data);
    if (!state) { draw(canvas.parentNode || document); return; }
    state.data = data;  // still loading: the chart is created from the latest data
    if (!state.chart) return;
    var dataset = state.chart.data.datasets[0];
    var fresh = points(state.features, data);
    dataset.data.forEach(function (point, i) { point.value = fresh[i].value; });
    dataset.label = data.label || "";
    var labels = names(state.features, data);
    labels.forEach(function (name, i) { state.chart.data.labels[i] = name; });
    state.chart.update("none");
  }

  // dashboard.js calls these: it draws every chart of a page, and hands a drawn map over to the
  // widget htmx brings in its place (update).
  window.LiveInsightMap = { draw: draw, update: update };
})();
