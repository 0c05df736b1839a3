// Stands in for d3-scale-chromatic in the charts bundle (`make vendor` aliases it with esbuild's
// --alias): chartjs-chart-geo imports its 38 named colour schemes only to look a color scale's
// `interpolate` *name* up ("blues", "viridis", ...), and the real module is about 13 KB gzipped
// (with d3-color and d3-interpolate) that no tree-shaking can drop. static/js/map.js always passes
// its own `interpolate` function, so none of them is ever used here.
//
// Every name is one light-to-dark blue ramp (the ends of d3's "Blues"), so a chart that still asks
// for a named scheme draws in a sensible colour instead of failing. If chartjs-chart-geo starts to
// import another name from d3-scale-chromatic, esbuild stops the build ("No matching export").
const LIGHT = [247, 251, 255];  // #f7fbff
const DARK = [8, 48, 107];  // #08306b

function ramp(t) {
  const s = Math.min(1, Math.max(0, Number(t) || 0));
  return "rgb(" + LIGHT.map((c, i) => Math.round(c + (DARK[i] - c) * s)).join(",") + ")";
}

export {
  ramp as interpolateBlues, ramp as interpolateBrBG, ramp as interpolateBuGn, ramp as interpolateBuPu,
  ramp as interpolateCividis, ramp as interpolateCool, ramp as interpolateCubehelixDefault,
  ramp as interpolateGnBu, ramp as interpolateGreens, ramp as interpolateGreys, ramp as interpolateInferno,
  ramp as interpolateMagma, ramp as interpolateOrRd, ramp as interpolateOranges, ramp as interpolatePRGn,
  ramp as interpolatePiYG, ramp as interpolatePlasma, ramp as interpolatePuBu, ramp as interpolatePuBuGn,
  ramp as interpolatePuOr, ramp as interpolatePuRd, ramp as interpolatePurples, ramp as interpolateRainbow,
  ramp as interpolateRdBu, ramp as interpolateRdGy, ramp as interpolateRdPu, ramp as interpolateRdYlBu,
  ramp as interpolateRdYlGn, ramp as interpolateReds, ramp as interpolateSinebow, ramp as interpolateSpectral,
  ramp as interpolateTurbo, ramp as interpolateViridis, ramp as interpolateWarm, ramp as interpolateYlGn,
  ramp as interpolateYlGnBu, ramp as interpolateYlOrBr, ramp as interpolateYlOrRd,
};
