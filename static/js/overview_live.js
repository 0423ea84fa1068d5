// Overview: keeps the host status counts and the down list current. Listens on /ws/<org>/hosts/; a down
// host that reports is moved out at once, and any hosts event (or a reconnect) re-reads overview/status.json
// at most every REFRESH_MS to settle the exact numbers. Hosts that go silent send no event, so the status
// is also re-read every POLL_MS.
(function () {
  "use strict";
  var root = document.getElementById("overview-live");
  if (!root) { return; }
  var REFRESH_MS = 5000, POLL_MS = 30000;
  var state = document.getElementById("overview-live-state");
  var tbody = document.getElementById("down-hosts-body");
  var delay = 1000, timer = null, lastRefresh = 0;

  function setCount(key, value) {
    var el = document.querySelector('[data-count="' + key + '"]');
    if (el) { el.textContent = value; }
  }

  function silentFor(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 120) { return s + " s"; }
    if (s < 7200) { return Math.round(s / 60) + " min"; }
    if (s < 172800) { return Math.round(s / 3600) + " h"; }
    return Math.round(s / 86400) + " d";
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    row.appendChild(td);
    return td;
  }

  function renderDown(hosts) {
    tbody.textContent = "";
    if (!hosts.length) {
      var empty = document.createElement("tr");
      cell(empty, "No host is down.", "muted").colSpan = 5;
      tbody.appendChild(empty);
      return;
    }
    hosts.forEach(function (host) {
      var row = document.createElement("tr");
      row.dataset.hostId = host.id;
      var name = cell(row, "");
      var link = document.createElement("a");
      link.href = host.url;
      link.textContent = host.label;
      name.appendChild(link);
      if (!host.is_active) { name.appendChild(document.createTextNode(" (inactive)")); }
      cell(row, host.environment);
      cell(row, host.datacenter);
      cell(row, host.last_seen_text).dataset.ts = host.last_seen_at;
      cell(row, silentFor(host.last_seen_at)).dataset.silent = host.last_seen_at;
      tbody.appendChild(row);
    });
  }

  function render(status) {
    Object.keys(status.counts).forEach(function (key) { setCount(key, status.counts[key]); });
    renderDown(status.down);
  }

  function refresh() {
    if (timer) { return; }
    timer = setTimeout(function () {
      timer = null;
      lastRefresh = Date.now();
      fetch(root.dataset.statusUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (status) { if (status) { render(status); } })
        .catch(function () { /* the next event or poll tries again */ });
    }, Math.max(0, lastRefresh + REFRESH_MS - Date.now()));
  }

  function hostReported(host) {
    var row = tbody.querySelector('tr[data-host-id="' + host.id + '"]');
    if (row && host.status === "up") {
      row.remove();
      var down = document.querySelector('[data-count="down"]'), up = document.querySelector('[data-count="up"]');
      down.textContent = Math.max(0, Number(down.textContent) - 1);
      up.textContent = Number(up.textContent) + 1;
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
    socket.onopen = function () {
      if (delay > 1000) { refresh(); } // events were missed while disconnected
      delay = 1000;
      if (state) { state.textContent = "Live updates: on"; }
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type !== "hosts.update") { return; }
      (message.hosts || []).forEach(hostReported);
      refresh();
    };
    socket.onclose = function (event) {
      if (event.code === 4403) { if (state) { state.textContent = "Live updates: not allowed"; } return; }
      if (state) { state.textContent = "Live updates: reconnecting…"; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  setInterval(function () {
    tbody.querySelectorAll("[data-silent]").forEach(function (td) { td.textContent = silentFor(td.dataset.silent); });
  }, 15000);
  setInterval(refresh, POLL_MS);
  connect();
})();
