// Time-series charts drawn with uPlot (served from our static files, see STATICFILES_DIRS).
// Markup: a [data-chart-group] holds range buttons ([data-range] = seconds) and figures [data-chart]
// whose data-query is a GET /api/v1/metrics filter. Each range change refetches with a step that keeps a
// series at <= MAX_POINTS points; the figure says which tier answered. Hover shows values in the legend,
// dragging across the plot zooms, double-click resets. data-rate turns counters into per-second rates;
// data-p95 adds a dashed p95-per-step line. A figure with data-inline draws embedded [[t, v], ...] instead.
// A group with data-live-path (a host page) also opens that websocket: each "metrics.points" frame (the
// newest point per series, at most one frame a second) is added to the lines of the series it names, in
// the chart's step -- a new bucket is appended, a point in the newest bucket updates it (avg: a running
// mean, approximate until the next refetch; last/max/min as the aggregation says) -- and points older than
// the selected range fall off. p95 lines are not extended (a percentile needs the whole bucket). The
// figure's data-points is the number of x values drawn, for tests and tooling.
// An element with data-live-names-path (a saved dashboard) opens that websocket instead: a "metrics.names"
// frame (at most one every two seconds per organization) names metrics that got new data, and each figure
// inside whose data-metric is one of them re-fetches only its newest part -- from its last bucket to now,
// same query, step and aggregation -- replacing that bucket and appending newer ones as above (a series the
// chart did not have yet reloads the whole chart).
(function () {
  "use strict";
  var MAX_POINTS = 500;
  var STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var COLORS = ["#4fb3ff", "#3fb950", "#d29922", "#f85149", "#a371f7", "#39c5cf", "#db61a2", "#8a97a3"];
  var HEIGHT = 220;

  function pickStep(rangeSeconds) {
    for (var i = 0; i < STEPS.length; i++) {
      if (rangeSeconds / STEPS[i] <= MAX_POINTS) { return STEPS[i]; }
    }
    return STEPS[STEPS.length - 1];
  }

  // Unit-aware formatting. A unit (the series' own, the chart's, or guessed from a Prometheus name suffix)
  // picks a scale table; ticks share one scale and get just enough decimals to stay distinct, so a chart
  // of values like 0.0004 s reads "0.4 ms, 0.5 ms" instead of "0.00" on every line.
  // [divisor, suffix, used from this magnitude on]: a minute scale from 2 min, like the page's durations.
  var SCALES = {
    duration: [[86400, " d", 172800], [3600, " h", 7200], [60, " min", 120], [1, " s", 1], [1e-3, " ms", 1e-3],
               [1e-6, " µs", 1e-6], [1e-9, " ns", 0]],
    bytes: [[Math.pow(1024, 4), " TiB"], [Math.pow(1024, 3), " GiB"], [1048576, " MiB"], [1024, " KiB"], [1, " B", 0]],
    percent: [[1, " %", 0]],
    si: [[1e12, " T"], [1e9, " G"], [1e6, " M"], [1e3, " k", 1e4], [1, " ", 0.01], [1e-3, " m"], [1e-6, " µ"],
         [1e-9, " n", 0]],
  };

  function unitKind(unit) {
    var u = (unit || "").toLowerCase();
    if (u === "%" || u === "percent") { return {kind: "percent", suffix: ""}; }
    if (u === "s" || u === "seconds" || u === "second") { return {kind: "duration", suffix: ""}; }
    if (u === "b" || u === "bytes" || u === "by") { return {kind: "bytes", suffix: ""}; }
    if (u === "b/s" || u === "bytes/s" || u === "by/s") { return {kind: "bytes", suffix: "/s"}; }
    return {kind: "si", suffix: unit || ""};
  }

  // Prometheus naming conventions carry the base unit in the name (go_gc_duration_seconds, *_bytes).
  function unitFromName(name) {
    if (/_seconds(_sum|_bucket)?$/.test(name || "")) { return "s"; }
    if (/_bytes$/.test(name || "")) { return "bytes"; }
    if (/_(percent|pct)$/.test(name || "")) { return "%"; }
    return "";
  }

  function scaleFor(kind, magnitude) {
    var table = SCALES[kind];
    if (!(magnitude > 0)) { return table.filter(function (e) { return e[0] === 1; })[0]; }
    for (var i = 0; i < table.length; i++) {
      if (magnitude >= (table[i].length > 2 ? table[i][2] : table[i][0])) { return table[i]; }
    }
    return table[table.length - 1];
  }

  function withScale(value, scale, decimals, u) {
    return (value / scale[0]).toFixed(decimals) + (scale[1] + u.suffix).replace(/ $/, "");
  }

  // One value (legend, tooltips): three significant digits in the value's own scale.
  function fmt(value, unit) {
    if (value === null || value === undefined || isNaN(value)) { return "—"; }
    var u = unitKind(unit), scale = scaleFor(u.kind, Math.abs(value));
    var scaled = Math.abs(value / scale[0]);
    var decimals = scaled === 0 || scaled >= 100 ? 0 : scaled >= 10 ? 1 : scaled >= 1 ? 2 : 3;
    return withScale(value, scale, decimals, u);
  }

  // Axis ticks: one scale for all (from the largest tick), decimals from the tick spacing, and more
  // decimals while two labels would still read the same.
  function fmtTicks(ticks, incr, unit) {
    var u = unitKind(unit), magnitude = 0;
    ticks.forEach(function (v) { if (v !== null && Math.abs(v) > magnitude) { magnitude = Math.abs(v); } });
    var scale = scaleFor(u.kind, magnitude || Math.abs(incr || 0));
    var step = Math.abs(incr || 0) / scale[0];
    var decimals = step > 0 && isFinite(step) ? Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) : 0;
    for (;; decimals++) {
      var labels = ticks.map(function (v) { return v === null ? "" : withScale(v, scale, decimals, u); });
      if (decimals >= 12 || new Set(labels).size === labels.length) { return labels; }
    }
  }

  function label(series, suffix) {
    var parts = [];
    Object.keys(series.labels || {}).sort().forEach(function (key) {
      if (key !== "host") { parts.push(key + "=" + series.labels[key]); }
    });
    var host = series.host && !series._hostKnown ? series.host + " " : "";
    return host + series.name + (parts.length ? "{" + parts.join(",") + "}" : "") + (suffix || "");
  }

  function toRate(points) {
    var out = [];
    for (var i = 1; i < points.length; i++) {
      var dt = points[i][0] - points[i - 1][0], dv = points[i][1] - points[i - 1][1];
      if (dt > 0 && dv >= 0) { out.push([points[i][0], dv / dt]); } // a negative delta is a counter reset
    }
    return out;
  }

  // [[t, v], ...] per line -> uPlot's column data [xs, ys1, ys2, ...] with null where a line has no point.
  function align(lines) {
    var times = {};
    lines.forEach(function (pts) { pts.forEach(function (p) { times[p[0]] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (t, i) { index[t] = i; });
    var data = [xs];
    lines.forEach(function (pts) {
      var ys = new Array(xs.length).fill(null);
      pts.forEach(function (p) { ys[index[p[0]]] = p[1]; });
      data.push(ys);
    });
    return data;
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
        return body;
      });
    });
  }

  function draw(figure, lines, names, unit) {
    var plotEl = figure.querySelector(".chart-plot");
    if (figure._plot) { figure._plot.destroy(); figure._plot = null; }
    plotEl.textContent = "";
    if (!lines.some(function (l) { return l.length; })) {
      plotEl.textContent = "No data in this range.";
      plotEl.className = "chart-plot chart-empty muted";
      figure.dataset.points = "0";
      return;
    }
    plotEl.className = "chart-plot";
    if (typeof window.uPlot === "undefined") {
      plotEl.textContent = "Chart library not installed (run npm ci).";
      return;
    }
    var series = [{}];
    names.forEach(function (name, i) {
      var dashed = / p95$/.test(name);
      series.push({label: name, stroke: COLORS[(dashed ? i - 1 : i) % COLORS.length], width: dashed ? 1 : 1.5,
                   dash: dashed ? [6, 4] : undefined, spanGaps: false,
                   value: function (u, v) { return fmt(v, unit); }});
    });
    var axis = {stroke: "#8a97a3", grid: {stroke: "#2a333d", width: 1}, ticks: {stroke: "#2a333d"}};
    var opts = {
      width: Math.max(plotEl.clientWidth, 300), height: HEIGHT, series: series,
      cursor: {drag: {x: true, y: false}},
      scales: {x: {time: true}},
      axes: [axis, Object.assign({}, axis, {size: 80, values: function (u, ticks, axisIdx, space, incr) {
        var labels = fmtTicks(ticks, incr, unit);
        figure.dataset.yTicks = JSON.stringify(labels); // what the axis shows, for tests and tooling
        return labels;
      }})],
    };
    var data = align(lines);
    figure._plot = new window.uPlot(opts, data, plotEl);
    figure.dataset.points = String(data[0].length);
  }

  // Redraw after live points: the same plot with new data, keeping a zoom the user dragged.
  function redraw(figure) {
    var live = figure._live, plot = figure._plot;
    var lines = live.lines.map(function (l) { return l.points; });
    if (!plot) { draw(figure, lines, live.names, live.unit); return; }
    var data = align(lines), xs = plot.data[0];
    var zoomed = xs.length > 1 && (plot.scales.x.min > xs[0] || plot.scales.x.max < xs[xs.length - 1]);
    plot.setData(data, !zoomed);
    figure.dataset.points = String(data[0].length);
  }

  function setMeta(figure, text) {
    var meta = figure.querySelector(".chart-meta");
    if (meta) { meta.textContent = text; }
  }

  function loadChart(figure, rangeSeconds) {
    var unit = figure.dataset.unit || "";
    if (figure.dataset.inline) {
      var points = JSON.parse(document.getElementById(figure.dataset.inline).textContent);
      draw(figure, [points], [figure.dataset.label || "value"], unit);
      return;
    }
    var query = figure.dataset.query;
    if (!query) { return; }
    var end = Math.floor(Date.now() / 1000);
    var step = pickStep(rangeSeconds);
    var start = Math.floor((end - rangeSeconds) / step) * step;
    var agg = figure.dataset.agg || "avg";
    var base = figure.dataset.api + "?" + query + "&start=" + start + "&end=" + end + "&step=" + step;
    var wanted = [getJSON(base + "&agg=" + agg)];
    if (figure.dataset.p95) { wanted.push(getJSON(base + "&agg=p95")); }
    setMeta(figure, "loading…");
    figure._live = null; // points arriving before the new answer belong to the old range
    var token = figure._token = {};
    Promise.all(wanted).then(function (answers) {
      if (figure._token !== token) { return; } // a newer range was asked for meanwhile
      var lines = [], names = [], live = [], rate = !!figure.dataset.rate, hostKnown = !!figure.dataset.host;
      answers.forEach(function (answer, k) {
        answer.series.forEach(function (s) {
          s._hostKnown = hostKnown;
          var points = rate ? toRate(s.points) : s.points;
          lines.push(points);
          names.push(label(s, k ? " p95" : ""));
          live.push({id: k ? null : s.id, points: points, raw: s.points[s.points.length - 1] || null});
        });
      });
      var first = answers[0];
      if (!unit && first.series.length) { unit = first.series[0].unit || unitFromName(first.series[0].name); }
      setMeta(figure, "tier " + first.tier + (first.step ? " · step " + first.step + " s" : "") + " · " +
              first.series.length + " series");
      figure._live = {lines: live, names: names, unit: unit, step: first.step || 0, agg: agg, rate: rate,
                      range: rangeSeconds, asked: step};
      draw(figure, lines, names, unit);
    }).catch(function (error) {
      if (figure._token !== token) { return; }
      setMeta(figure, "");
      draw(figure, [], [], unit);
      figure.querySelector(".chart-plot").textContent = "Could not load: " + error.message;
    });
  }


  // One live point of a line: [t, v] raw, into the line's step buckets. False when nothing changed.
  function addPoint(live, line, t, v) {
    if (live.rate) {
      var raw = line.raw;
      line.raw = [t, v];
      if (!raw || t <= raw[0] || v < raw[1]) { return false; } // the first point, or a counter reset
      v = (v - raw[1]) / (t - raw[0]);
    }
    var bucket = live.step ? Math.floor(t / live.step) * live.step : t;
    var pts = line.points, last = pts[pts.length - 1];
    if (last && bucket < last[0]) { return false; } // late: the next refetch has it
    if (last && bucket === last[0]) {
      if (live.agg === "avg") {
        line.n = line.bucket === bucket ? line.n + 1 : 2;
        last[1] += (v - last[1]) / line.n;
      } else if (live.agg === "max") { last[1] = Math.max(last[1], v); }
      else if (live.agg === "min") { last[1] = Math.min(last[1], v); }
      else if (live.agg === "sum") { last[1] += v; }
      else if (live.agg === "count") { last[1] += 1; }
      else { last[1] = v; }
    } else {
      pts.push([bucket, live.agg === "count" ? 1 : v]);
      line.n = 1;
    }
    line.bucket = bucket;
    var oldest = bucket - live.range;
    while (pts.length && pts[0][0] < oldest) { pts.shift(); }
    return true;
  }

  function applyPoints(group, points) {
    group.querySelectorAll("[data-chart]").forEach(function (figure) {
      var live = figure._live;
      if (!live) { return; }
      var changed = false;
      points.forEach(function (p) {
        live.lines.forEach(function (line) {
          if (line.id === p.id && addPoint(live, line, p.t, p.v)) { changed = true; }
        });
      });
      if (changed) { redraw(figure); }
    });
  }

  // The newest part of a figure's range again (a saved dashboard's notice): from its last bucket to now.
  // One fetch per figure at a time; a notice arriving meanwhile fetches once more afterwards.
  function refreshNewest(figure) {
    var live = figure._live;
    if (!live || live.rate) { return; }
    if (figure._refreshing) { figure._refreshAgain = true; return; }
    var newest = null;
    live.lines.forEach(function (l) {
      var last = l.points[l.points.length - 1];
      if (last && (newest === null || last[0] > newest)) { newest = last[0]; }
    });
    // A step past now: the notice can come within the second of the point it announces (or an agent's clock
    // can run a little ahead), and a flooring "now" would leave that point out.
    var now = Math.floor(Date.now() / 1000), end = now + Math.max(live.asked, 1);
    var start = newest === null ? now - live.range : Math.floor(newest);
    var url = figure.dataset.api + "?" + figure.dataset.query + "&start=" + start + "&end=" + end +
              "&step=" + live.asked + "&agg=" + live.agg;
    figure._refreshing = true;
    getJSON(url).then(function (answer) {
      if (figure._live !== live) { return; } // the range changed meanwhile: that load drew everything
      var byId = {}, unknown = false, changed = false;
      live.lines.forEach(function (l) { if (l.id) { byId[l.id] = l; } });
      answer.series.forEach(function (s) {
        var line = byId[s.id];
        if (!line) { unknown = true; return; }
        s.points.forEach(function (p) {
          var pts = line.points, last = pts[pts.length - 1];
          if (last && p[0] === last[0]) { if (last[1] !== p[1]) { last[1] = p[1]; changed = true; } }
          else if (!last || p[0] > last[0]) { pts.push([p[0], p[1]]); changed = true; }
        });
        var oldest = (line.points.length ? line.points[line.points.length - 1][0] : now) - live.range;
        while (line.points.length && line.points[0][0] < oldest) { line.points.shift(); }
      });
      if (unknown) { loadChart(figure, live.range); return; }
      if (changed) { redraw(figure); }
    }).catch(function () { /* the next notice or a reload tries again */ }).then(function () {
      figure._refreshing = false;
      if (figure._refreshAgain) { figure._refreshAgain = false; refreshNewest(figure); }
    });
  }

  function refreshNames(root, names) {
    root.querySelectorAll("[data-chart][data-metric]").forEach(function (figure) {
      if (names.indexOf(figure.dataset.metric) >= 0) { refreshNewest(figure); }
    });
  }

  // A live socket for `el` (data-live = on/off), reconnecting with backoff unless refused (4403).
  function connectLive(el, path, onFrame) {
    var delay = 1000;
    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + path);
      socket.onopen = function () { delay = 1000; el.dataset.live = "on"; };
      socket.onmessage = function (event) {
        el.dataset.liveFrames = String(Number(el.dataset.liveFrames || 0) + 1); // for tests and tooling
        onFrame(JSON.parse(event.data));
      };
      socket.onclose = function (event) {
        el.dataset.live = "off";
        if (event.code === 4403) { return; } // not allowed (signed out, access ended): do not retry
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  function initGroup(group) {
    var range = Number((group.querySelector("[data-range].active") || {dataset: {range: 3600}}).dataset.range);
    var figures = group.querySelectorAll("[data-chart]");
    function loadAll() { figures.forEach(function (f) { loadChart(f, range); }); }
    group.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        group.querySelectorAll("[data-range]").forEach(function (b) { b.classList.remove("active"); });
        button.classList.add("active");
        range = Number(button.dataset.range);
        loadAll();
      });
    });
    group.querySelectorAll("select[data-chart-select]").forEach(function (select) {
      select.addEventListener("change", function () {
        var figure = select.closest("[data-chart]");
        var params = new URLSearchParams(figure.dataset.queryBase);
        params.set("name", select.value);
        figure.dataset.query = params.toString();
        loadChart(figure, range);
      });
    });
    loadAll();
    if (group.dataset.livePath && typeof window.WebSocket !== "undefined") {
      connectLive(group, group.dataset.livePath, function (message) {
        if (message.type === "metrics.points") { applyPoints(group, message.points || []); }
      });
    }
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll("[data-chart]").forEach(function (figure) {
        if (figure._plot) {
          figure._plot.setSize({width: Math.max(figure.querySelector(".chart-plot").clientWidth, 300), height: HEIGHT});
        }
      });
    }, 150);
  });

  document.querySelectorAll("[data-chart-group]").forEach(initGroup);
  if (typeof window.WebSocket !== "undefined") {
    document.querySelectorAll("[data-live-names-path]").forEach(function (root) {
      connectLive(root, root.dataset.liveNamesPath, function (message) {
        if (message.type === "metrics.names") { refreshNames(root, message.names || []); }
      });
    });
  }
})();
