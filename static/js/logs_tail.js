// Live tail of the logs page: while the box is ticked, entries matching the page's filters arrive over
// /ws/<org>/logs/ and are prepended to the table (at most 500 rows kept). Text is set with textContent,
// never innerHTML, so a log line cannot inject markup. Reconnects with backoff.
(function () {
  "use strict";
  var table = document.getElementById("logs-table");
  var toggle = document.getElementById("logs-tail-toggle");
  if (!table || !toggle) { return; }
  var state = document.getElementById("logs-tail-state");
  var body = table.querySelector("tbody");
  var socket = null;
  var delay = 1000;
  var MAX_ROWS = 500;

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text || "";
    if (className) { td.className = className; }
    return td;
  }

  function prepend(entry) {
    var empty = body.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    var row = document.createElement("tr");
    row.appendChild(cell(entry.time, "nowrap"));
    row.appendChild(cell(entry.level, "level-" + entry.level));
    row.appendChild(cell(entry.host));
    row.appendChild(cell(entry.service));
    row.appendChild(cell(entry.program));
    row.appendChild(cell(entry.message, "message"));
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) { body.deleteRow(-1); }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + table.dataset.wsPath);
    socket.onopen = function () { delay = 1000; state.textContent = "tailing"; };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type !== "logs.entries") { return; }
      message.entries.forEach(prepend);
    };
    socket.onclose = function (event) {
      if (!toggle.checked) { state.textContent = ""; return; }
      if (event.code === 4403) { state.textContent = "not allowed"; return; }
      state.textContent = "reconnecting…";
      setTimeout(function () { if (toggle.checked) { connect(); } }, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) { connect(); } else if (socket) { socket.close(); socket = null; }
  });
})();
