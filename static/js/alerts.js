// Alerting pages. Three small jobs, each only where its markup is:
// 1. #alerts-live: listens on /ws/<org>/alerts/ and, on any message, re-fetches the table fragment
//    (?fragment=1) -- so the page stays right whatever the payload carries. Reconnects with backoff and
//    refreshes after a reconnect (updates may have been missed). With Redis down the socket fails and
//    the page simply stays as rendered.
// 2. time[data-ago]: keeps "3 min ago" current (the absolute time is in the title).
// 3. the rule form shows only the sections of the chosen kind (all show without JavaScript).
// 4. figure[data-alert-chart]: the alert's value around it, from GET /api/v1/metrics, drawn with uPlot
//    with the thresholds (and an anomaly baseline) as flat lines and the transitions as markers.
(function () {
  "use strict";

  // --- relative times ---------------------------------------------------------------------------------
  function relative(seconds) {
    var future = seconds < 0, s = Math.abs(seconds), text;
    if (s < 60) { text = Math.floor(s) + " s"; }
    else if (s < 3600) { text = Math.floor(s / 60) + " min"; }
    else if (s < 86400) {
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      text = h + " h" + (m && h < 6 ? " " + m + " min" : "");
    } else { text = Math.floor(s / 86400) + " d"; }
    return future ? "in " + text : text + " ago";
  }

  function refreshTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[data-ago]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(t)) { el.textContent = relative((now - t) / 1000); }
    });
  }
  setInterval(refreshTimes, 15000);

  // --- live alert list --------------------------------------------------------------------------------
  var live = document.getElementById("alerts-live");
  if (live) {
    var state = document.getElementById("alerts-live-state");
    var delay = 1000, inFlight = false, again = false, timer = null, everOpen = false;

    var setState = function (text) { if (state) { state.textContent = "Live updates: " + text; } };

    var refresh = function () {
      timer = null;
      // Do not pull the table from under someone choosing a silence duration; try again shortly.
      if (document.activeElement && live.contains(document.activeElement) &&
          document.activeElement.tagName === "SELECT") { schedule(2000); return; }
      if (inFlight) { again = true; return; }
      inFlight = true;
      fetch(live.dataset.fragmentUrl, {credentials: "same-origin", headers: {Accept: "text/html"}})
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#alert-table"), old = document.getElementById("alert-table");
          if (fresh && old) { old.replaceWith(fresh); refreshTimes(fresh); }
        })
        .catch(function () { /* keep what is shown; the next message tries again */ })
        .then(function () {
          inFlight = false;
          if (again) { again = false; schedule(1000); }
        });
    };

    // Coalesce bursts (an alert storm sends many messages): at most one fetch a second.
    var schedule = function (ms) { if (!timer) { timer = setTimeout(refresh, ms); } };

    var connect = function () {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket;
      try { socket = new WebSocket(scheme + window.location.host + live.dataset.wsPath); }
      catch (e) { setState("unavailable"); return; }
      socket.onopen = function () {
        delay = 1000;
        setState("on");
        if (everOpen) { schedule(0); }
        everOpen = true;
      };
      socket.onmessage = function () { schedule(300); };
      socket.onclose = function (event) {
        if (event.code === 4403 || event.code === 4401) { setState("not allowed"); return; }
        setState("reconnecting…");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    };
    connect();
  }

  // --- rule form: show the sections of the chosen kind -------------------------------------------------
  var kind = document.querySelector('select[name="kind"]');
  if (kind) {
    var showKind = function () {
      document.querySelectorAll("fieldset[data-kinds]").forEach(function (set) {
        set.hidden = set.dataset.kinds.split(" ").indexOf(kind.value) < 0;
      });
    };
    kind.addEventListener("change", showKind);
    showKind();
  }

  // --- alert value chart ------------------------------------------------------------------------------
  var STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var MAX_POINTS = 500;

  function pickStep(range) {
    for (var i = 0; i < STEPS.length; i++) { if (range / STEPS[i] <= MAX_POINTS) { return STEPS[i]; } }
    return STEPS[STEPS.length - 1];
  }

  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) { return "—"; }
    var a = Math.abs(v);
    if (a !== 0 && (a < 0.01 || a >= 1e6)) { return v.toExponential(2); }
    return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
  }

  function drawChart(figure, config) {
    var plotEl = figure.querySelector(".chart-plot"), meta = figure.querySelector(".chart-meta");
    var start = Number(figure.dataset.start), end = figure.dataset.live ? Math.floor(Date.now() / 1000)
      : Number(figure.dataset.end);
    var step = pickStep(end - start);
    var url = figure.dataset.api + "?" + figure.dataset.query + "&start=" + start + "&end=" + end + "&step=" + step +
      "&agg=" + encodeURIComponent(figure.dataset.agg || "avg");
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
          return body;
        });
      })
      .then(function (answer) {
        var series = answer.series || [];
        if (meta) { meta.textContent = "tier " + answer.tier + (answer.step ? " · step " + answer.step + " s" : ""); }
        var times = {};
        series.forEach(function (s) { s.points.forEach(function (p) { times[p[0]] = true; }); });
        var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
        if (figure._plot) { figure._plot.destroy(); figure._plot = null; }
        plotEl.textContent = "";
        if (!xs.length) { plotEl.textContent = "No data in this range."; return; }
        if (typeof window.uPlot === "undefined") { plotEl.textContent = "Chart library not installed (run npm ci)."; return; }
        var index = {};
        xs.forEach(function (t, i) { index[t] = i; });
        var data = [xs], opts = [{}];
        series.forEach(function (s) {
          var ys = new Array(xs.length).fill(null);
          s.points.forEach(function (p) { ys[index[p[0]]] = p[1]; });
          data.push(ys);
          opts.push({label: s.name, stroke: "#4fb3ff", width: 1.5, value: function (u, v) { return fmt(v); }});
        });
        (config.lines || []).forEach(function (line) {
          data.push(xs.map(function () { return line.value; }));
          opts.push({label: line.label, stroke: line.color, width: 1, dash: [6, 4], value: function (u, v) { return fmt(v); }});
        });
        var markers = config.markers || [];
        var axis = {stroke: "#8a97a3", grid: {stroke: "#2a333d", width: 1}, ticks: {stroke: "#2a333d"}};
        figure._plot = new window.uPlot({
          width: Math.max(plotEl.clientWidth, 300), height: 240, series: opts,
          cursor: {drag: {x: true, y: false}}, scales: {x: {time: true}},
          axes: [axis, Object.assign({}, axis, {size: 70, values: function (u, vals) { return vals.map(fmt); }})],
          hooks: {draw: [function (u) {
            var ctx = u.ctx;
            ctx.save();
            markers.forEach(function (m) {
              var x = Math.round(u.valToPos(m.t, "x", true));
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
              ctx.strokeStyle = "#8a97a3"; ctx.setLineDash([2, 3]); ctx.beginPath();
              ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
              ctx.fillStyle = "#8a97a3"; ctx.font = "11px system-ui"; ctx.fillText(m.label, x + 3, u.bbox.top + 11);
            });
            ctx.restore();
          }]},
        }, data, plotEl);
      })
      .catch(function (error) { plotEl.textContent = "Could not load: " + error.message; });
  }

  var figure = document.querySelector("[data-alert-chart]");
  if (figure) {
    var configEl = document.getElementById("alert-chart-config");
    var config = configEl ? JSON.parse(configEl.textContent) : {};
    drawChart(figure, config);
    if (figure.dataset.live) { setInterval(function () { drawChart(figure, config); }, 30000); }
  }
})();
