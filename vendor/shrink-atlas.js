// Shrinks world-atlas's countries-110m.json for the dashboard's map (static/js/map.js), run by
// `make vendor`:  node vendor/shrink-atlas.js IN.json OUT.json
//
// - keeps only the "countries" object (map.js draws it; "land" is not used), and of each country
//   its id (ISO 3166-1 numeric, which app/dashboard/countries.py and map.js key on) and
//   properties.name (map.js's fallback name; the countries tests read it too);
// - drops Antarctica ("010"), which map.js leaves out anyway, and the arcs only it used;
// - quantizes the coordinates 20 times coarser (1e5 -> 5,000 steps across the world's width, a
//   step of 0.07 degrees: still a quarter of a pixel on a map 1,200 px wide), which shortens every
//   delta and merges points that fell on the same step.
// The result is still TopoJSON that topojson-client's feature() reads as before.
"use strict";
const fs = require("fs");

const DROP_IDS = new Set(["010"]);
const COARSER = 20;

function shrink(topology) {
  const countries = topology.objects.countries;
  const geometries = countries.geometries
    .filter((g) => !DROP_IDS.has(g.id))
    .map((g) => {
      const out = { type: g.type, arcs: g.arcs, id: g.id };
      if (g.properties && g.properties.name) out.properties = { name: g.properties.name };
      if (out.arcs === undefined) delete out.arcs;
      return out;
    });

  // Keep the arcs still used, renumbered in their old order (~i is arc i reversed).
  const used = new Set();
  const visit = (arcs, fn) => (Array.isArray(arcs) ? arcs.map((a) => visit(a, fn)) : fn(arcs));
  geometries.forEach((g) => g.arcs && visit(g.arcs, (i) => used.add(i < 0 ? ~i : i)));
  const order = [...used].sort((a, b) => a - b);
  const index = new Map(order.map((old, i) => [old, i]));
  geometries.forEach((g) => {
    if (g.arcs) g.arcs = visit(g.arcs, (i) => (i < 0 ? ~index.get(~i) : index.get(i)));
  });

  // Coarser quantization: absolute positions / COARSER, rounded, then delta-encoded again.
  // Every arc keeps its two ends (shared by its neighbours, so the shapes still meet).
  const arcs = order.map((old) => {
    let x = 0, y = 0, px = null, py = null;
    const points = [];
    topology.arcs[old].forEach(([dx, dy], k, arc) => {
      x += dx; y += dy;
      const qx = Math.round(x / COARSER), qy = Math.round(y / COARSER);
      const last = k === arc.length - 1;
      if (px === qx && py === qy && !(last && points.length < 2)) return;
      points.push([qx, qy]);
      px = qx; py = qy;
    });
    let ax = 0, ay = 0;
    return points.map(([qx, qy]) => {
      const d = [qx - ax, qy - ay];
      ax = qx; ay = qy;
      return d;
    });
  });

  const [sx, sy] = topology.transform.scale;
  return {
    type: "Topology",
    bbox: topology.bbox,
    transform: { scale: [sx * COARSER, sy * COARSER], translate: topology.transform.translate },
    objects: { countries: { type: countries.type, geometries } },
    arcs,
  };
}

if (require.main === module) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error("usage: node vendor/shrink-atlas.js IN.json OUT.json");
    process.exit(2);
  }
  fs.writeFileSync(output, JSON.stringify(shrink(JSON.parse(fs.readFileSync(input, "utf8")))));
}

module.exports = { shrink };
