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

  function openForm(id) {
    var form = document.getElementById(id);
    if (!form) return;
    document.querySelectorAll("#review-panel form.panel").forEach(function (other) {
      if (other !== form) other.hidden = true;
    });
    form.hidden = false;
    var first = form.querySelector("input[type=radio]:not(:checked), input[type=text]");
    var target = id === "escalate-form" ? form.querySelector("input[type=text]") : first;
    if (target) target.focus();
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

  document.addEventListener("keydown", function (event) {
    var current = panel();
    if (!current || !current.dataset.caseId || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") { closeForms(); return; }
    var typing = event.target.closest("input[type=text], textarea, select");
    if (typing) return;
    var key = event.key.toLowerCase();
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
        var reason = override.querySelector("input[name=reason_code][data-key='" + key + "']");
        if (!reason) return;
        event.preventDefault();
        reason.checked = true;
        if (override.querySelector("input[name=final_action]:checked")) {
          submit(override);
        } else {
          var firstAction = override.querySelector("input[name=final_action]");
          if (firstAction) firstAction.focus();
          showToast("Choose the final action, then press the reason's number again.");
        }
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
      var datasets = spec.series.map(function (series, i) {
        var colour = series.colour || PALETTE[i % PALETTE.length];
        return {
          label: series.label, data: categorical ? series.values : series.points,
          stepped: categorical ? false : spec.stepped !== false,
          borderColor: colour, backgroundColor: colour, borderWidth: series.width || 2,
          borderDash: series.dashed ? [6, 4] : [], showLine: series.showLine !== false,
          pointRadius: series.pointRadius || 0, spanGaps: true,
        };
      });
      var y = { title: { display: true, text: spec.yLabel } };
      if (spec.yMin !== null) y.min = spec.yMin === undefined ? 0 : spec.yMin;
      if (spec.yMax !== null) y.max = spec.yMax === undefined ? 1 : spec.yMax;
      new window.Chart(canvas, {
        type: "line",
        data: categorical ? { labels: spec.categories, datasets: datasets } : { datasets: datasets },
        options: {
          animation: false, maintainAspectRatio: false,
          interaction: { mode: "nearest", intersect: false },
          scales: {
            x: { type: categorical ? "category" : "linear", title: { display: true, text: spec.xLabel } },
            y: y,
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
