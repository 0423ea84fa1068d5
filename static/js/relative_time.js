// Relative times: every <time data-relative datetime="ISO"> reads "12 s ago" and is kept current; the
// absolute UTC time is in its title (set by the server). Other scripts set `datetime` and call
// window.relativeTime.refresh(element) when a live event moves it. Steps match the server's ("ago" filter).
(function () {
  "use strict";
  function short(seconds) {
    var s = Math.max(0, Math.round(seconds));
    if (s < 120) { return s + " s"; }
    if (s < 7200) { return Math.round(s / 60) + " min"; }
    if (s < 172800) { return Math.round(s / 3600) + " h"; }
    return Math.round(s / 86400) + " d";
  }

  function utc(date) {
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function refresh(el) {
    var when = Date.parse(el.getAttribute("datetime") || "");
    if (isNaN(when)) { return; }
    el.textContent = short((Date.now() - when) / 1000) + " ago";
    el.title = utc(new Date(when));
  }

  function refreshAll() { document.querySelectorAll("time[data-relative]").forEach(refresh); }

  window.relativeTime = {refresh: refresh, refreshAll: refreshAll};
  refreshAll();
  setInterval(refreshAll, 1000);
})();
