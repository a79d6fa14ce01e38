// Countersign front-end behaviour: keyboard countersigning and clear errors for htmx swaps.
// Loaded as a file (the Content-Security-Policy forbids inline scripts).
(function () {
  "use strict";

  function panel() {
    return document.getElementById("review-panel");
  }

  function showToast(message) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    toast.hidden = false;
    window.clearTimeout(showToast.timer);
    showToast.timer = window.setTimeout(function () { toast.hidden = true; }, 8000);
  }

  // A case swapped in takes no decision until it has been painted and the settle time (the
  // DECISION_SETTLE_MS setting, on the panel as data-settle-ms) has passed: a second key press
  // meant for the case just decided never lands on the next one, which nobody has read yet.
  var readyAt = Infinity;

  function settle() {
    readyAt = Infinity;
    var current = panel();
    if (!current) return;
    var wait = parseInt(current.getAttribute("data-settle-ms") || "400", 10);
    // Two frames: the first runs before the paint, the second after it.
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () {
        readyAt = window.performance.now() + wait;
        // Marks the panel ready for keys (what tests and assistive tools can wait for).
        window.setTimeout(function () { current.setAttribute("data-ready", ""); }, wait);
      });
    });
  }

  function settled() {
    return window.performance.now() >= readyAt;
  }

  // The undo link in the confirmation disappears when the server would no longer take it.
  function armUndo() {
    var undo = document.getElementById("undo-form");
    if (!undo) return;
    var left = parseInt(undo.getAttribute("data-undo-ms") || "0", 10);
    window.clearTimeout(armUndo.timer);
    armUndo.timer = window.setTimeout(function () { undo.hidden = true; }, Math.max(left - 250, 0));
  }

  function swappedIn() {
    var current = panel();
    if (current && current !== swappedIn.last) { swappedIn.last = current; settle(); armUndo(); }
  }

  document.addEventListener("DOMContentLoaded", swappedIn);
  document.addEventListener("htmx:afterSwap", swappedIn);

  // Focus follows the case: when htmx swaps a new review panel in, the old one (and whatever had
  // focus in it) is gone and focus would fall to the page body. Move it to the new case's heading,
  // so keyboard and screen-reader users go on from the case they now see.
  function focusSwappedPanel() {
    var current = panel();
    if (!current || current === focusSwappedPanel.last) return;
    focusSwappedPanel.last = current;
    var active = document.activeElement;
    if (active && active !== document.body && current.contains(active)) return;  // htmx kept it there
    var heading = current.querySelector("h1");
    if (!heading) return;
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });  // the swap itself scrolls to the top
  }

  document.addEventListener("DOMContentLoaded", function () { focusSwappedPanel.last = panel(); });
  document.addEventListener("htmx:afterSwap", focusSwappedPanel);

  // Clicks and Enter submit decision forms too: they wait for the same settle time.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.closest || !form.closest("#review-panel .decide") || settled()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);

  // Override: O, then the final action's number when there is more than one alternative, then
  // the reason's number (which submits). The fieldset not waiting for a number is dimmed.
  function overrideStep(form) {
    var choosing = !form.querySelector("input[name=final_action]:checked");
    var actions = form.querySelector("fieldset.final-actions");
    var reasons = form.querySelector("fieldset.reasons");
    if (actions) actions.classList.toggle("waiting", !choosing);
    if (reasons) reasons.classList.toggle("waiting", choosing);
    return choosing ? "action" : "reason";
  }

  function openForm(id) {
    var form = document.getElementById(id);
    if (!form) return;
    document.querySelectorAll("#review-panel form.panel").forEach(function (other) {
      if (other !== form) other.hidden = true;
    });
    var wasHidden = form.hidden;
    form.hidden = false;
    if (id === "escalate-form") {
      var text = form.querySelector("input[type=text]");
      if (text) text.focus();
      return;
    }
    var actions = form.querySelectorAll("input[name=final_action]");
    if (wasHidden && actions.length > 1) {
      // Each opening starts from the first step.
      actions.forEach(function (input) { input.checked = false; });
      form.querySelectorAll("input[name=reason_code]").forEach(function (input) { input.checked = false; });
    }
    overrideStep(form);
    form.setAttribute("tabindex", "-1");
    form.focus();
  }

  function closeForms() {
    document.querySelectorAll("#review-panel form.panel").forEach(function (form) { form.hidden = true; });
    if (document.activeElement) document.activeElement.blur();
  }

  function submit(form) {
    if (form && !form.classList.contains("htmx-request")) form.requestSubmit();
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-open]");
    if (toggle) openForm(toggle.getAttribute("data-open"));
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("#override-form");
    if (form) overrideStep(form);
  });

  document.addEventListener("keydown", function (event) {
    var current = panel();
    if (!current || event.ctrlKey || event.metaKey || event.altKey) return;
    var typing = event.target.closest("input[type=text], textarea, select");
    var key = event.key.toLowerCase();
    if (key === "u" && !typing) {
      var undo = document.getElementById("undo-form");
      if (undo && !undo.hidden) { event.preventDefault(); submit(undo); }
      return;
    }
    if (!current.dataset.caseId) return;
    if (event.key === "Escape") { closeForms(); return; }
    if (typing) return;
    if (!settled()) {
      // The case has only just appeared: this key was meant for the one before it.
      if (key === "a" || key === "o" || key === "e" || /^[1-9]$/.test(key)) event.preventDefault();
      return;
    }
    var override = document.getElementById("override-form");
    if (key === "a") {
      event.preventDefault();
      submit(current.querySelector("form[data-decision=accept]"));
    } else if (key === "o" && override) {
      event.preventDefault();
      openForm("override-form");
    } else if (key === "e") {
      event.preventDefault();
      openForm("escalate-form");
    } else if (/^[1-9]$/.test(key)) {
      if (override && !override.hidden) {
        var step = overrideStep(override);
        var name = step === "action" ? "final_action" : "reason_code";
        var choice = override.querySelector("input[name=" + name + "][data-key='" + key + "']");
        if (!choice) return;
        event.preventDefault();
        choice.checked = true;
        if (step === "action") overrideStep(override);
        else submit(override);
      } else {
        var unaided = current.querySelector("button[name=final_action][data-key='" + key + "']");
        if (unaided) { event.preventDefault(); unaided.click(); }
      }
    }
  });

  // Charts: a <canvas data-chart data-chart-source="ID"> reads its series from the JSON
  // <script type="application/json" id="ID"> beside it (data, never code, so the CSP holds).
  var PALETTE = ["#1f5fbf", "#b3261e", "#1b7f4b", "#9a5b00", "#6a3fb5", "#00838f", "#5f6b7a", "#c2185b"];

  function renderCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart-source"));
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      // Two kinds of spec: points on a numeric x axis ({x, y}, stepped by default, e.g. survival
      // curves), or values over named categories (e.g. days of a control chart).
      var categorical = Array.isArray(spec.categories);
      // Series with "draw": false are table-only columns (templates/_chart.html).
      var drawn = spec.series.filter(function (series) { return series.draw !== false; });
      var datasets = drawn.map(function (series, i) {
        var colour = series.colour || PALETTE[i % PALETTE.length];
        return {
          label: series.label, data: categorical ? series.values : series.points,
          stepped: categorical ? false : spec.stepped !== false,
          borderColor: colour, backgroundColor: colour, borderWidth: series.width || 2,
          borderDash: series.dashed ? [6, 4] : [], showLine: series.showLine !== false,
          pointRadius: series.pointRadius || 0, spanGaps: true,
          // A band drawn as two lines (lower and upper edge) is one thing to the reader: the
          // server marks the second edge "legend": false and gives both edges one "group".
          inLegend: series.legend !== false, group: series.group || series.label,
          tableColumn: series.column || series.label,  // its column in the table under the chart
        };
      });
      // The spec is built by webapp/charts.py, which documents it; a null axis end fits the data.
      var y = { title: { display: true, text: spec.yLabel } };
      if (spec.yMin !== null) y.min = spec.yMin;
      if (spec.yMax !== null) y.max = spec.yMax;
      var x = { type: categorical ? "category" : "linear", title: { display: true, text: spec.xLabel } };
      // A clipped axis (the caption says where and why) keeps long tails from squeezing the rest.
      if (typeof spec.xMax === "number") x.max = spec.xMax;
      if (!categorical) x.min = 0;
      new window.Chart(canvas, {
        type: "line",
        data: categorical ? { labels: spec.categories, datasets: datasets } : { datasets: datasets },
        options: {
          animation: false, maintainAspectRatio: false,
          interaction: { mode: "nearest", intersect: false },
          scales: { x: x, y: y },
          plugins: {
            legend: {
              labels: {
                filter: function (item, data) { return data.datasets[item.datasetIndex].inLegend; },
              },
              // Showing or hiding a band shows or hides both of its edges.
              onClick: function (event, item, legend) {
                var chart = legend.chart;
                var group = chart.data.datasets[item.datasetIndex].group;
                var show = !chart.isDatasetVisible(item.datasetIndex);
                chart.data.datasets.forEach(function (dataset, i) {
                  if (dataset.group === group) chart.setDatasetVisibility(i, show);
                });
                chart.update();
              },
            },
          },
        },
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { renderCharts(event.detail.elt); });

  // The server explains a refused htmx request in an HX-Trigger event and leaves the page alone.
  document.addEventListener("countersign:problem", function (event) {
    showToast(event.detail.value || "That did not work.");
  });

  // A failed htmx request must never leave a blank or silent screen.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status === 401) return;  // HX-Redirect to the sign-in page handles it
    if (event.detail.xhr.getResponseHeader("HX-Trigger")) return;  // already explained
    showToast(status === 403 ? "You are not allowed to do that." :
      "The server could not complete that (" + status + "). Nothing was lost; try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showToast("Countersign cannot be reached. Your last action was not sent; try again.");
  });
})();
