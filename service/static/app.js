// The dashboard's behaviour: charts from the page's JSON (ECharts, drawn on canvas; every element links
// to the records behind it), the review queue's keyboard, and the training job's progress.
// Text from the server is only ever set as textContent, never as HTML.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const dataNode = document.getElementById("chart-data");
  const data = dataNode ? JSON.parse(dataNode.textContent) : null;
  const palette = ["#ef4444", "#f59e0b", "#3b82f6", "#10b981", "#8b5cf6", "#64748b"];
  const charts = [];

  function follow(params) {
    const url = params && params.data && params.data.url;
    if (typeof url === "string" && url.startsWith("/") && !url.startsWith("//")) window.location.href = url;
  }

  function draw(node, option) {
    const chart = echarts.init(node, null, { renderer: "canvas" });
    // richText tooltips are drawn on the canvas: no label can become HTML.
    chart.setOption(Object.assign({ color: palette, tooltip: { trigger: "item", renderMode: "richText" },
                                    animation: false }, option));
    chart.on("click", follow);
    charts.push(chart);
    node.style.cursor = "pointer";
    return chart;
  }

  const builders = {
    by_category: (d) => ({
      legend: { top: 0, data: [d.month, d.previous_month] },
      grid: { left: 40, right: 16, bottom: 30, top: 36 },
      xAxis: { type: "category", data: d.categories },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: d.month, type: "bar", data: d.current, label: { show: true, position: "top" } },
               { name: d.previous_month, type: "bar", data: d.previous, itemStyle: { color: "#cbd5e1" } }],
    }),
    trend: (d) => ({
      legend: { top: 0, data: d.series.map((s) => s.name) },
      grid: { left: 40, right: 16, bottom: 30, top: 36 },
      xAxis: { type: "category", data: d.months },
      yAxis: { type: "value", minInterval: 1 },
      series: d.series.map((s) => ({ name: s.name, type: "line", data: s.data, symbolSize: 8 })),
    }),
    channels: (d) => ({
      legend: { top: 0, data: d.series.map((s) => s.name) },
      grid: { left: 80, right: 16, bottom: 30, top: 36 },
      yAxis: { type: "category", data: d.channels.map((c) => (c === "(none)" ? "未指定" : c)) },
      xAxis: { type: "value", minInterval: 1 },
      color: ["#ef4444", "#94a3b8", "#10b981"],
      series: d.series.map((s) => ({ name: s.name, type: "bar", stack: "all", data: s.data })),
    }),
    dimensions: (d) => ({
      grid: { left: 40, right: 16, bottom: 40, top: 20 },
      xAxis: { type: "category", data: d.names, axisLabel: { interval: 0 } },
      yAxis: { type: "value", min: 1, max: 5 },
      series: [{ type: "bar", data: d.means, label: { show: true, position: "top" } }],
    }),
    satisfaction: (d) => ({
      color: ["#b91c1c", "#f97316", "#facc15", "#4ade80", "#15803d"],
      legend: { bottom: 0 },
      series: [{ type: "pie", radius: "65%", data: d, label: { formatter: "{b}: {d}%" } }],
    }),
    negative: (d) => ({
      grid: { left: 80, right: 30, bottom: 20, top: 10 },
      yAxis: { type: "category", data: d.names },
      xAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: d.counts, label: { show: true, position: "right" } }],
    }),
  };

  if (data && window.echarts) {
    document.querySelectorAll("[data-chart]").forEach((node) => {
      const name = node.dataset.chart;
      if (builders[name] && data[name] !== undefined) draw(node, builders[name](data[name]));
    });
    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  }

  // 复核: number keys toggle labels, Enter accepts, arrows move.
  const review = document.getElementById("review");
  if (review) {
    const items = Array.from(review.querySelectorAll("form.review-item"));
    const nCategories = parseInt(review.dataset.categories, 10);
    let index = 0;
    let doneHere = 0;
    const select = (i) => {
      if (!items.length) return;
      index = Math.max(0, Math.min(items.length - 1, i));
      items.forEach((f, k) => f.classList.toggle("current", k === index));
      items[index].scrollIntoView({ block: "nearest" });
    };
    const submit = async (form) => {
      const status = form.querySelector(".status");
      status.textContent = "保存中…";
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      });
      let answer = {};
      try { answer = await response.json(); } catch (e) { answer = { ok: false, error: "HTTP " + response.status }; }
      if (answer.ok) {
        form.classList.add("done");
        status.textContent = "已确认";
        form.querySelectorAll("input, button").forEach((el) => { el.disabled = true; });
        doneHere += 1;
        document.getElementById("done-here").textContent = String(doneHere);
        document.getElementById("reviewed").textContent = String(answer.reviewed);
        document.getElementById("waiting").textContent = String(answer.waiting);
        const next = items.findIndex((f, k) => k > items.indexOf(form) && !f.classList.contains("done"));
        if (next >= 0) select(next);
      } else {
        status.textContent = "未保存：" + (answer.error || answer.detail || response.status);
      }
    };
    items.forEach((form, k) => {
      form.addEventListener("submit", (event) => { event.preventDefault(); submit(form); });
      form.addEventListener("click", () => select(k));
    });
    document.addEventListener("keydown", (event) => {
      if (event.target.matches("input[type=text], input[type=search], textarea, select") || !items.length) return;
      const form = items[index];
      if (event.key === "ArrowDown" || event.key === "ArrowRight") { select(index + 1); event.preventDefault(); }
      else if (event.key === "ArrowUp" || event.key === "ArrowLeft") { select(index - 1); event.preventDefault(); }
      else if (event.key === "Enter") { if (!form.classList.contains("done")) submit(form); event.preventDefault(); }
      else if (/^[1-9]$/.test(event.key) && !form.classList.contains("done")) {
        const n = parseInt(event.key, 10);
        if (n <= nCategories) {
          const box = form.querySelectorAll('input[name="categories"]')[n - 1];
          if (box) box.checked = !box.checked;
        } else {
          const radio = form.querySelectorAll('input[name="sentiment"]')[n - nCategories - 1];
          if (radio) radio.checked = true;
        }
        event.preventDefault();
      }
    });
  }

  // 模型: a running job's progress, polled until it ends (then the page reloads with its figures).
  const logs = document.querySelectorAll("pre.log");
  if (logs.length && document.querySelector('.job-state')) {
    const poll = async () => {
      const response = await fetch("/model/jobs", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const jobs = await response.json();
      let running = false;
      jobs.forEach((job) => {
        const pre = document.querySelector('pre.log[data-job="' + CSS.escape(job.name) + '"]');
        if (pre) pre.textContent = job.log_tail.join("\n") + "\n（" + job.elapsed + " 秒）";
        if (job.state === "running") running = true;
      });
      if (running) setTimeout(poll, 2000); else window.location.reload();
    };
    if (Array.from(document.querySelectorAll(".job-state")).some((n) => n.textContent.trim() === "训练中")) setTimeout(poll, 2000);
  }
})();
