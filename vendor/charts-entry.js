// The one chart script the dashboard loads: `make vendor` bundles it with esbuild (tree-shaken,
// minified, an IIFE) into static/vendor/charts-<chart.js version>-geo-<chartjs-chart-geo version>.min.js.
// Only what static/js/dashboard.js and static/js/map.js draw is registered; a chart type, scale or
// plugin they start to use must be added here (Chart.js otherwise says '"x" is not a registered ...').
//
// dashboard.js: line (main, lines, sparklines; fill and dashed segments), bar, doughnut charts;
//   category and linear scales; Filler, Legend and Tooltip plugins; Chart.getChart.
// map.js: choropleth (GeoFeature), the projection and color scales, ChartGeo.topojson.feature.
//
// Globals, as the UMD builds this replaces gave them: window.Chart and window.ChartGeo.
import {
  Chart,
  LineController, BarController, DoughnutController,
  LineElement, PointElement, BarElement, ArcElement,
  CategoryScale, LinearScale,
  Filler, Legend, Tooltip,
} from "chart.js";
import { ChoroplethController, GeoFeature, ColorScale, ProjectionScale } from "chartjs-chart-geo";
import { feature } from "topojson-client";

Chart.register(
  LineController, BarController, DoughnutController,
  LineElement, PointElement, BarElement, ArcElement,
  CategoryScale, LinearScale,
  Filler, Legend, Tooltip,
  ChoroplethController, GeoFeature, ColorScale, ProjectionScale,
);

window.Chart = Chart;
window.ChartGeo = {
  ChoroplethController, GeoFeature, ColorScale, ProjectionScale,
  topojson: { feature },
};
