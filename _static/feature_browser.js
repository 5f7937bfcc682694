// The book's feature browser (wmlib/book/feature_browser.py): choose a sparse feature (or a label, to list its
// features); see the labels of its most active held-out tokens, its activation along its top utterance, and its
// top tokens — a click plays the token with half a second before it.  Offline: the clips are data URIs in the page.
(function () {
  "use strict";

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function sparkline(trace) {
    var width = 560, height = 70, values = trace.values, top = Math.max.apply(null, values.concat([1e-6]));
    var points = values.map(function (v, i) {
      return (i / Math.max(1, values.length - 1) * width).toFixed(1) + "," + (height - v / top * (height - 4)).toFixed(1);
    }).join(" ");
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "wm-feature-trace");
    var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points);
    svg.appendChild(line);
    return svg;
  }

  function attach(container) {
    var data = JSON.parse(container.querySelector(".wm-feature-data").textContent);
    var clips = JSON.parse(container.querySelector(".wm-feature-clips").textContent);
    var select = container.querySelector(".wm-feature-select");
    var labelSelect = container.querySelector(".wm-feature-label");
    var panel = container.querySelector(".wm-feature-panel");
    var player = container.querySelector(".wm-feature-player");
    var status = container.querySelector(".wm-feature-status");

    player.addEventListener("playing", function () { container.dataset.state = "playing"; });
    player.addEventListener("pause", function () { container.dataset.state = "paused"; });
    player.addEventListener("ended", function () { container.dataset.state = "ended"; });

    function play(token) {
      container.dataset.state = "loading";
      container.dataset.clip = String(token.clip);
      status.textContent = "Playing " + token.utt + " at " + token.at.toFixed(2) + " s (" + token.labels +
        "), activation " + token.activation.toFixed(2) + ".";
      player.src = clips[token.clip];
      var started = player.play();
      if (started && started.catch) {
        started.catch(function (error) { container.dataset.state = "blocked: " + error.name; });
      }
    }

    function show(index) {
      var entry = data.features[index];
      panel.innerHTML = "";
      container.dataset.feature = String(entry.feature);
      panel.appendChild(element("p", "wm-feature-head", "Feature #" + entry.feature + " matches " + entry.label +
        ": held-out F1 " + entry.f1.toFixed(2) + " (precision " + entry.precision.toFixed(2) + ", recall " +
        entry.recall.toFixed(2) + ")."));
      panel.appendChild(element("p", "wm-feature-caption", "Labels of its most active held-out tokens:"));
      var bars = element("div", "wm-feature-histogram");
      var most = entry.histogram.length ? entry.histogram[0][1] : 1;
      entry.histogram.forEach(function (pair) {
        var bar = element("div", "wm-feature-bar");
        var fill = element("span", "wm-feature-fill");
        fill.style.width = (100 * pair[1] / most).toFixed(0) + "%";
        bar.appendChild(fill);
        bar.appendChild(element("span", "wm-feature-bar-label", pair[0] + " (" + pair[1] + ")"));
        bars.appendChild(bar);
      });
      panel.appendChild(bars);
      if (entry.trace && entry.trace.values) {
        panel.appendChild(element("p", "wm-feature-caption", "Its activation along " + entry.trace.utt + " (" +
          (entry.trace.values.length * entry.trace.step).toFixed(1) + " s):"));
        panel.appendChild(sparkline(entry.trace));
      }
      panel.appendChild(element("p", "wm-feature-caption", "Its top tokens (one per utterance) — click to listen:"));
      var list = element("div", "wm-feature-tokens");
      entry.tokens.forEach(function (token) {
        var button = element("button", "wm-feature-token", token.utt + " @ " + token.at.toFixed(2) + " s · " +
          token.labels + " · " + token.activation.toFixed(2));
        button.type = "button";
        button.dataset.clip = String(token.clip);
        button.addEventListener("click", function () { play(token); });
        list.appendChild(button);
      });
      panel.appendChild(list);
    }

    labelSelect.addEventListener("change", function () {
      var first = null;
      Array.prototype.forEach.call(select.options, function (option) {
        var match = !labelSelect.value || data.features[+option.value].label === labelSelect.value;
        option.hidden = !match;
        if (match && first === null) first = option.value;
      });
      if (first !== null) { select.value = first; show(+first); }
    });
    select.addEventListener("change", function () { show(+select.value); });
    show(0);
    container.dataset.ready = "true";
  }

  function attachAll() {
    document.querySelectorAll(".wm-feature-browser:not([data-ready])").forEach(attach);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attachAll);
  else attachAll();
})();
