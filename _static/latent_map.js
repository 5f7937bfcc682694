// The book's interactive latent maps (wmlib/book/latent_map.py): clicking a point plays its token's audio with
// half a second of context before it.  Offline: the clips are data URIs embedded in the page next to the map.
(function () {
  "use strict";

  function attach(container) {
    var plot = container.querySelector(".plotly-graph-div");
    var player = container.querySelector(".wm-latent-player");
    var status = container.querySelector(".wm-latent-status");
    var clips = JSON.parse(container.querySelector(".wm-latent-clips").textContent);
    var context = parseFloat(container.dataset.contextSeconds || "0.5");
    var stopAt = null;
    if (!plot || typeof plot.on !== "function") return false;  // plotly has not drawn it yet

    player.addEventListener("timeupdate", function () {
      if (stopAt !== null && player.currentTime >= stopAt) { player.pause(); stopAt = null; }
    });
    player.addEventListener("playing", function () {
      container.dataset.state = "playing";
      // timeupdate fires only every ~250 ms: once sound really flows, also stop on time by the clock
      clearTimeout(player.stopTimer);
      if (stopAt !== null) {
        var target = stopAt;
        player.stopTimer = setTimeout(function () {
          if (stopAt === target) { player.pause(); stopAt = null; }
        }, Math.max(0, (target - player.currentTime) * 1000) + 80);
      }
    });
    player.addEventListener("pause", function () { container.dataset.state = "paused"; });

    plot.on("plotly_click", function (event) {
      if (!event.points || !event.points.length) return;
      var data = event.points[0].customdata;
      var clip = data[0], start = data[1], end = data[2];
      var from = Math.max(0, start - context);
      container.dataset.state = "loading";
      container.dataset.clip = String(clip);
      status.textContent = "Playing " + event.points[0].text.split("<br>")[1] + " (from " + from.toFixed(2) +
        " s to " + end.toFixed(2) + " s).";
      var play = function () {
        player.currentTime = from;
        stopAt = end;
        var started = player.play();
        if (started && started.catch) {
          started.catch(function (error) { container.dataset.state = "blocked: " + error.name; });
        }
      };
      if (player.dataset.clip === String(clip) && player.readyState >= 1) { play(); return; }
      player.dataset.clip = String(clip);
      player.src = clips[clip];
      player.addEventListener("loadedmetadata", play, { once: true });
      player.load();
    });
    container.dataset.ready = "true";
    return true;
  }

  function attachAll() {
    var pending = 0;
    document.querySelectorAll(".wm-latent-map:not([data-ready])").forEach(function (container) {
      if (!attach(container)) pending += 1;
    });
    if (pending) setTimeout(attachAll, 200);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attachAll);
  else attachAll();
})();
