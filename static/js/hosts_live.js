// Live host list: listens on /ws/<org>/hosts/ and updates the status and last-seen cells in place
// (last seen reads "12 s ago" through relative_time.js; the absolute time is its title).
// Status also turns "down" in the browser once last-seen is older than the staleness threshold, so a
// silent host is shown as down without waiting for a server event. Reconnects with backoff.
(function () {
  "use strict";
  var table = document.getElementById("hosts-table");
  if (!table) { return; }
  var state = document.getElementById("hosts-live-state");
  var staleAfterMs = Number(table.dataset.staleAfter || 300) * 1000;
  var delay = 1000;

  function setStatus(cell, status) {
    cell.textContent = status;
    cell.className = "status-" + status;
  }

  function applyHost(host) {
    var row = table.querySelector('tr[data-host-id="' + host.id + '"]');
    if (!row) { return; }
    var seen = row.querySelector('[data-field="last_seen_at"]');
    if (host.last_seen_at) {
      seen.dataset.ts = host.last_seen_at;
      var time = seen.querySelector("time");
      if (!time) {
        time = document.createElement("time");
        time.setAttribute("data-relative", "");
        seen.textContent = "";
        seen.appendChild(time);
      }
      time.setAttribute("datetime", host.last_seen_at);
      if (window.relativeTime) { window.relativeTime.refresh(time); }
    }
    setStatus(row.querySelector('[data-field="status"]'), host.status);
  }

  function removeHost(id) {
    var row = table.querySelector('tr[data-host-id="' + id + '"]');
    if (row) { row.remove(); }
  }

  function recomputeStatuses() {
    var now = Date.now();
    table.querySelectorAll('[data-field="last_seen_at"]').forEach(function (cell) {
      if (!cell.dataset.ts) { return; }
      var status = now - Date.parse(cell.dataset.ts) > staleAfterMs ? "down" : "up";
      setStatus(cell.parentElement.querySelector('[data-field="status"]'), status);
    });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + table.dataset.wsPath);
    socket.onopen = function () {
      delay = 1000;
      table.dataset.live = "on";
      if (state) { state.textContent = "Live updates: on"; }
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type !== "hosts.update") { return; }
      (message.hosts || []).forEach(applyHost);
      (message.removed || []).forEach(removeHost);
    };
    socket.onclose = function (event) {
      table.dataset.live = "off";
      if (event.code === 4403) { if (state) { state.textContent = "Live updates: not allowed"; } return; }
      if (state) { state.textContent = "Live updates: reconnecting…"; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  setInterval(recomputeStatuses, 15000);
  connect();
})();
