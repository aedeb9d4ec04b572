"""The report's inline style sheet and script (no external file, no CDN: the page opens offline).

The script does three things and nothing else; without it every table and figure is still
there and readable (tables in a useful default order, SVG figures static):

* **sorting**: a click on a header of a ``table.sortable`` sorts its rows by the cells'
  ``data-v`` (the full-precision number) or their text; a second click reverses;
* **hover**: each ``figure[data-h]`` refers to an entry of the JSON block ``#pb-data``
  (point pixels, architecture indices and values). The first hover over a figure puts its
  points in a grid of 8 px buckets; then each mouse move looks at the 3×3 buckets around the
  cursor only, so 15,625 points cost nothing noticeable;
* **self-test**: opened with ``#selftest``, it hovers the first point of every figure
  programmatically and writes what the tooltip would show into ``data-selftest``, clicks the
  first numeric header of every sortable table and writes ``sorted``/``unsorted`` into its
  ``data-selftest`` (a headless browser's ``--dump-dom`` then proves both paths work), and marks
  ``<body data-ready="1">`` when the script has run to its end.
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --fg:#1d2733; --muted:#5b6774; --line:#d5dbe1; --bg:#ffffff; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid var(--line);
     padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
nav { margin: 8px 0 12px; color: var(--muted); } nav a { margin-right: 12px; color: var(--accent); }
.meta, .note, figcaption { color: var(--muted); font-size: 12px; }
.warn { background: #fff4e0; border-left: 4px solid #e0a030; padding: 6px 10px; margin: 8px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f5f7; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 9px; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 9px; }
td .ci { color: var(--muted); font-size: 11px; white-space: nowrap; }
td code, .arch { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11px; }
div.scroll { overflow-x: auto; max-width: 100%; }
table.paper th.cg { text-align: center; border-bottom: 1px solid #9aa5b1; }
table.paper tr.rg th { background: #e8edf2; font-weight: 600; }
table.paper tbody th { background: #fff; font-weight: normal; position: static; white-space: nowrap; }
table.paper u { text-decoration-thickness: 1.5px; text-underline-offset: 2px; }
details { margin: 4px 0; } summary { cursor: pointer; color: var(--accent); }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure.panel { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 4px; background: #fff; }
figure.panel figcaption { padding: 0 4px 2px; max-width: 364px; }
figure.panel.wide figcaption { max-width: 424px; }
svg text { font: 10px system-ui, "DejaVu Sans", sans-serif; fill: #333; }
svg text.label { font-size: 11px; fill: #222; }
svg rect.bg { fill: #fbfcfd; stroke: #b8c0c8; stroke-width: 0.8; }
svg path.grid { stroke: #e6eaee; stroke-width: 0.8; }
svg path.pts { fill: none; stroke: #1f5fa8; stroke-opacity: 0.45; stroke-width: 4.4; stroke-linecap: square; }
/* (points are drawn at half scale: 4.4 here is 2.2 px on screen) */
svg path.front { fill: none; stroke: #111; stroke-width: 1.4; }
svg circle.hl { fill: none; stroke: #d1495b; stroke-width: 2; pointer-events: none; }
svg .pick { fill: #d1495b; stroke: #222; stroke-width: 0.6; }
svg text.picklabel { font-size: 10px; fill: #8c1c2b; font-weight: 600; }
.key { margin-right: 12px; white-space: nowrap; } .key svg { vertical-align: middle; margin-right: 3px; }
#pb-tip { position: fixed; pointer-events: none; background: rgba(20,28,38,.93); color: #fff; padding: 5px 8px;
          border-radius: 4px; font-size: 12px; max-width: 560px; display: none; z-index: 10; }
#pb-tip .arch { color: #cfe3ff; word-break: break-all; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  function cellValue(row, k) {
    var c = row.cells[k]; if (!c) return "";
    var v = c.getAttribute("data-v");
    if (v !== null) { var f = parseFloat(v); return isNaN(f) ? null : f; }
    return c.textContent.trim().toLowerCase();
  }
  function sortBy(table, k, th) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, k), y = cellValue(b, k);
      if (x === null || x === "") return 1; if (y === null || y === "") return -1;
      var r = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
      return asc ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, k) {
      th.title = "sort"; th.addEventListener("click", function () { sortBy(table, k, th); });
    });
  });

  var node = document.getElementById("pb-data");
  var DATA = node ? JSON.parse(node.textContent) : {archs: [], truth: {}, h: []};
  var tip = document.getElementById("pb-tip");
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  function entry(fig) {
    if (fig._pb) return fig._pb;
    var h = DATA.h[+fig.getAttribute("data-h")];
    var t = h.t !== undefined ? DATA.truth[h.t] : h;
    var e = {x: h.x, y: t.y, a: t.a, u: h.u, w: t.w, un: h.un, wn: h.wn || t.wn, l: h.l, cells: {}};
    for (var i = 0; i < e.x.length; i++) {
      if (e.x[i] === null) continue;
      var key = Math.floor(e.x[i] / 8) + ":" + Math.floor(e.y[i] / 8);
      (e.cells[key] = e.cells[key] || []).push(i);
    }
    fig._pb = e; return e;
  }
  function nearest(e, px, py) {
    var best = -1, dist = 64, cx = Math.floor(px / 8), cy = Math.floor(py / 8);
    for (var dx = -1; dx <= 1; dx++) for (var dy = -1; dy <= 1; dy++) {
      var list = e.cells[(cx + dx) + ":" + (cy + dy)]; if (!list) continue;
      for (var j = 0; j < list.length; j++) {
        var i = list[j], d = (e.x[i] - px) * (e.x[i] - px) + (e.y[i] - py) * (e.y[i] - py);
        if (d < dist) { dist = d; best = i; }
      }
    }
    return best;
  }
  function num(v) {
    if (v === null || v === undefined) return "\u2014";
    var a = Math.abs(v);
    return (a >= 1e5 || (a > 0 && a < 1e-3)) ? v.toExponential(4) : String(+v.toPrecision(6));
  }
  function describe(e, i) {
    var lines = ['<div class="arch">' + esc(DATA.archs[e.a[i]]) + "</div>"];
    if (e.l) lines.push(esc(e.l[i]));
    lines.push(esc(e.un) + ": " + num(e.u[i]));
    lines.push(esc(e.wn) + ": " + num(e.w[i]));
    return lines.join("<br>");
  }
  function plotPoint(fig, ev) {
    var svg = fig.querySelector("svg"), g = svg.querySelector("g");
    var p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
    return p.matrixTransform(g.getScreenCTM().inverse());
  }
  document.querySelectorAll("figure[data-h]").forEach(function (fig) {
    var svg = fig.querySelector("svg"), hl = svg.querySelector("circle.hl");
    svg.addEventListener("mousemove", function (ev) {
      var e = entry(fig), q = plotPoint(fig, ev), i = nearest(e, q.x, q.y);
      if (i < 0) { tip.style.display = "none"; hl.setAttribute("visibility", "hidden"); return; }
      hl.setAttribute("cx", e.x[i]); hl.setAttribute("cy", e.y[i]); hl.setAttribute("visibility", "visible");
      tip.innerHTML = describe(e, i); tip.style.display = "block";
      tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
      tip.style.top = (ev.clientY + 14) + "px";
    });
    svg.addEventListener("mouseleave", function () {
      tip.style.display = "none"; hl.setAttribute("visibility", "hidden");
    });
  });
  if (location.hash === "#selftest") {
    document.querySelectorAll("figure[data-h]").forEach(function (fig) {
      var t0 = performance.now(), e = entry(fig), first = -1;
      fig.setAttribute("data-selftest-index-ms", (performance.now() - t0).toFixed(1));
      for (var i = 0; i < e.x.length; i++) if (e.x[i] !== null) { first = i; break; }
      var i2 = first < 0 ? -1 : nearest(e, e.x[first] + 1, e.y[first] + 1);
      fig.setAttribute("data-selftest", i2 < 0 ? "none" : DATA.archs[e.a[i2]] + " | " + e.u[i2] + " | " + e.w[i2]);
      if (first < 0) return;
      // the whole mouse path: a real mousemove event at the point's screen position
      var svg = fig.querySelector("svg"), g = svg.querySelector("g"), p = svg.createSVGPoint();
      p.x = e.x[first]; p.y = e.y[first];
      var q = p.matrixTransform(g.getScreenCTM());
      var t1 = performance.now();
      svg.dispatchEvent(new MouseEvent("mousemove", {clientX: q.x, clientY: q.y, bubbles: true}));
      fig.setAttribute("data-selftest-move-ms", (performance.now() - t1).toFixed(1));
      fig.setAttribute("data-selftest-tip", tip.style.display === "block" ? tip.textContent : "hidden");
      svg.dispatchEvent(new MouseEvent("mouseleave", {}));
    });
  }
  if (location.hash === "#selftest") {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var th = table.tHead.rows[0].querySelector("th.num");
      if (!th) return;
      var k = Array.prototype.indexOf.call(th.parentNode.cells, th);
      th.click();
      var values = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return cellValue(r, k); })
        .filter(function (v) { return typeof v === "number"; });
      var sorted = values.every(function (v, i) { return i === 0 || values[i - 1] <= v; });
      table.setAttribute("data-selftest", sorted ? "sorted" : "unsorted");
    });
  }
  document.body.setAttribute("data-ready", "1");
})();
"""
