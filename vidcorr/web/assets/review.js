(function () {
  "use strict";
  // vidcorr review: a track output's frames with every tracked point, the frames to check first, a strip chart
  // of confidence and speed; drags make labels, and Save writes the points file (the picker's format) with every
  // label. The page's data is the JSON block written by vidcorr.web.review. Coordinates are the video's own
  // pixels, pixel centres at +0.5 (the overlay's viewBox is "0 0 W H" over the picture).
  const DATA = VC.data();
  const PALETTE = DATA.palette;
  const MARKER_SCREEN_RADIUS = 7;
  const DRAG_START_PX = 2; // a press that moves less than this is a selection, not a correction
  const CHART_W = 1000;
  const CONF_TOP = 4, CONF_BOTTOM = 96, SPEED_TOP = 106, SPEED_BOTTOM = 146;

  const byId = (id) => document.getElementById(id);
  const svg = byId("overlay");
  const chart = byId("chart");
  const image = byId("frame");
  const slider = byId("slider");

  // Per video: its points' labels [{t, x, y}] (sorted by t) and "not visible" frames, as the user has them now.
  const state = DATA.videos.map((v) => ({
    labels: v.labels.map((rows) => rows.map((r) => ({ t: r[0], x: r[1], y: r[2] }))),
    hidden: v.hidden.map((frames) => frames.slice()),
  }));
  const original = DATA.videos.map((v) => v.labels.map((rows) => rows.map((r) => r.join(","))));
  let history = []; // {video, labels, hidden} before each change, for undo
  let video = 0; // index into DATA.videos
  let current = 0; // index into the video's shown frames
  let checkAt = -1; // position in the video's frames to check
  let selected = -1;
  let drag = null; // {index, pointerId, x, y (screen), before, moved}

  const V = () => DATA.videos[video];
  const S = () => state[video];
  const colour = (i) => PALETTE[i % PALETTE.length];
  const shown = () => V().shown[current];
  const frameOf = () => shown().frame;
  const labelOn = (p, t) => S().labels[p].find((l) => l.t === t) || null;
  const hiddenOn = (p, t) => S().hidden[p].includes(t);
  const copy = (s) => ({ labels: s.labels.map((rows) => rows.map((l) => ({ t: l.t, x: l.x, y: l.y }))),
    hidden: s.hidden.map((f) => f.slice()) });
  const corrected = (p, l) => !original[video][p].includes([l.t, l.x, l.y].join(","));
  const fixed = (v, digits) => (v === null || v === undefined ? "\u2014" : Number(v).toFixed(digits));

  function record() {
    history.push({ video: video, ...copy(S()) });
  }

  function say(text) {
    byId("status").textContent = text;
  }

  // ------------------------------------------------------------------------------------------ changes

  function setLabel(p, t, at) {
    const labels = S().labels[p];
    const l = labelOn(p, t);
    if (l) {
      l.x = at.x;
      l.y = at.y;
    } else {
      labels.push({ t: t, x: at.x, y: at.y });
      labels.sort((a, b) => a.t - b.t);
    }
    S().hidden[p] = S().hidden[p].filter((f) => f !== t);
  }

  // Remove the selected point's label (or its "not visible" mark) on the frame shown; a point keeps one label.
  function removeHere() {
    const p = selected, t = frameOf();
    if (p < 0) return;
    if (hiddenOn(p, t)) {
      record();
      S().hidden[p] = S().hidden[p].filter((f) => f !== t);
      say("point " + V().ids[p] + " is no longer marked not visible on frame " + t);
    } else if (labelOn(p, t)) {
      if (S().labels[p].length === 1) {
        say("point " + V().ids[p] + " has no other label: a point keeps at least one");
        return;
      }
      record();
      S().labels[p] = S().labels[p].filter((l) => l.t !== t);
      say("removed the label of point " + V().ids[p] + " on frame " + t);
    } else {
      return;
    }
    render();
  }

  // Mark the selected point not visible on the frame shown (its label there goes), or clear the mark.
  function toggleHidden() {
    const p = selected, t = frameOf();
    if (p < 0) return;
    if (hiddenOn(p, t)) {
      removeHere();
      return;
    }
    const l = labelOn(p, t);
    if (l && S().labels[p].length === 1) {
      say("point " + V().ids[p] + " has no other label: a point keeps at least one");
      return;
    }
    record();
    if (l) S().labels[p] = S().labels[p].filter((x) => x.t !== t);
    S().hidden[p].push(t);
    S().hidden[p].sort((a, b) => a - b);
    say("point " + V().ids[p] + " is marked not visible on frame " + t);
    render();
  }

  function undo() {
    if (!history.length) return;
    const last = history.pop();
    drag = null;
    if (last.video !== video) showVideo(last.video);
    state[last.video] = { labels: last.labels, hidden: last.hidden };
    say("undone");
    render();
  }

  // ------------------------------------------------------------------------------------------ moving

  function setFrame(index) {
    current = Math.max(0, Math.min(V().shown.length - 1, index));
    slider.value = String(current);
    image.src = shown().image;
    const at = V().ranking.check.indexOf(shown().row);
    if (at >= 0) checkAt = at;
    render();
  }

  function goToFrame(frame) {
    const k = V().shown.findIndex((f) => f.frame === frame);
    if (k >= 0) setFrame(k);
  }

  // The frame shown nearest to `frame` (the earlier on a tie).
  function goNear(frame) {
    let best = 0;
    V().shown.forEach((f, k) => {
      if (Math.abs(f.frame - frame) < Math.abs(V().shown[best].frame - frame)) best = k;
    });
    setFrame(best);
  }

  function stepCheck(delta) {
    const check = V().ranking.check;
    if (!check.length) return;
    checkAt = Math.max(0, Math.min(check.length - 1, checkAt + delta));
    goToFrame(V().rows.frames[check[checkAt]]);
  }

  function showVideo(index) {
    video = index;
    selected = -1;
    checkAt = -1;
    byId("video-choice").value = String(index);
    const v = V();
    document.title = "vidcorr review \u2014 " + v.file_name;
    byId("video-name").textContent = v.video;
    byId("video-meta").textContent = v.size[0] + "\u00d7" + v.size[1] + ", " + v.num_frames + " frames, " +
      Math.round(v.fps * 100) / 100 + " fps, " + VC.plural(v.ids.length, "point");
    svg.setAttribute("viewBox", "0 0 " + v.size[0] + " " + v.size[1]);
    slider.max = String(v.shown.length - 1);
    const refitted = byId("refitted");
    refitted.hidden = !v.refitted.length;
    refitted.textContent = "Refitted in this output: " + v.refitted.join(", ");
    layout();
    setFrame(0);
  }

  // ------------------------------------------------------------------------------------------ drawing

  function layout() {
    VC.fitPicture(image, document.querySelector(".viewer").clientWidth, V().size[0], V().size[1], 0.6);
    renderMarkers();
  }

  // Where point p is drawn on row `row` of frame t: its label there, else its tracked position (or null).
  function placeOf(p, row, t) {
    const l = labelOn(p, t);
    if (l) return [l.x, l.y];
    return V().rows.points[row][p];
  }

  function renderMarkers() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const v = V();
    const box = svg.getBoundingClientRect();
    const scale = box.width > 0 ? v.size[0] / box.width : 1;
    const r = MARKER_SCREEN_RADIUS * scale;
    const row = shown().row, t = shown().frame;
    v.ids.forEach((id, p) => {
      const trail = [];
      for (let k = Math.max(0, row - v.trail); k < row; k++) {
        const at = v.rows.points[k][p];
        if (at) trail.push(at[0] + "," + at[1]);
      }
      const here = placeOf(p, row, t);
      if (here && trail.length) {
        trail.push(here[0] + "," + here[1]);
        svg.appendChild(VC.svgNode("polyline", { class: "trail", points: trail.join(" "), stroke: colour(p),
          "stroke-width": 2 * scale, "data-index": p }));
      }
    });
    v.ids.forEach((id, p) => {
      const here = placeOf(p, row, t);
      if (!here) return;
      const [x, y] = here;
      const l = labelOn(p, t);
      const kind = l ? "labelled" : hiddenOn(p, t) ? "hidden" : v.rows.visible[row][p] ? "visible" : "occluded";
      const g = VC.svgNode("g", { class: "marker " + kind + (p === selected ? " selected" : "") +
        (l && corrected(p, l) ? " corrected" : "") + (drag && drag.index === p ? " dragging" : ""),
      "data-index": p, "data-id": id });
      g.appendChild(VC.svgNode("circle", { class: "ring", cx: x, cy: y, r: r * 1.7, "stroke-width": 2 * scale,
        fill: "transparent" }));
      if (l) {
        g.appendChild(VC.svgNode("rect", { class: "shape", x: x - r, y: y - r, width: 2 * r, height: 2 * r,
          fill: colour(p), "stroke-width": 1.5 * scale }));
      } else {
        g.appendChild(VC.svgNode("circle", { class: "shape", cx: x, cy: y, r: r, fill: colour(p), stroke: colour(p),
          "stroke-width": 2 * scale }));
      }
      if (kind === "hidden") {
        g.appendChild(VC.svgNode("path", { class: "cross", d: "M" + (x - r) + " " + (y - r) + "L" + (x + r) + " " +
          (y + r) + "M" + (x - r) + " " + (y + r) + "L" + (x + r) + " " + (y - r), stroke: colour(p),
        "stroke-width": 2 * scale }));
      }
      const text = VC.svgNode("text", { x: x + r * 1.3, y: y - r * 1.3, "font-size": 14 * scale,
        "stroke-width": 3 * scale, fill: colour(p) });
      text.textContent = id;
      g.appendChild(text);
      svg.appendChild(g);
    });
  }

  // The strip chart: x is the frame over the tracked range; the top band each point's confidence, the bottom
  // band its speed (scaled to the fastest point); the frames to check, the labels and the marks on it.
  function renderChart() {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    const v = V();
    const frames = v.rows.frames;
    const first = frames[0], span = Math.max(1, frames[frames.length - 1] - first);
    const xOf = (f) => ((f - first) / span) * CHART_W;
    chart.append(VC.svgNode("rect", { class: "band", x: 0, y: CONF_TOP, width: CHART_W, height: CONF_BOTTOM - CONF_TOP }),
      VC.svgNode("rect", { class: "band", x: 0, y: SPEED_TOP, width: CHART_W, height: SPEED_BOTTOM - SPEED_TOP }));
    v.ranking.check.forEach((row) => {
      const x = xOf(frames[row]);
      chart.appendChild(VC.svgNode("line", { class: "check-mark", x1: x, x2: x, y1: 0, y2: SPEED_BOTTOM + 4,
        "data-frame": frames[row] }));
    });
    let fastest = 0;
    v.rows.speed.forEach((row) => row.forEach((s) => { fastest = Math.max(fastest, s); }));
    v.ids.forEach((id, p) => {
      const conf = frames.map((f, k) => xOf(f) + "," + (CONF_BOTTOM - (CONF_BOTTOM - CONF_TOP) * v.rows.confidence[k][p]));
      const speed = frames.map((f, k) => xOf(f) + "," +
        (SPEED_BOTTOM - (fastest > 0 ? (SPEED_BOTTOM - SPEED_TOP) * v.rows.speed[k][p] / fastest : 0)));
      const mine = p === selected ? " selected" : "";
      chart.append(VC.svgNode("polyline", { class: "confidence" + mine, points: conf.join(" "), stroke: colour(p),
        "data-index": p }),
      VC.svgNode("polyline", { class: "speed" + mine, points: speed.join(" "), stroke: colour(p), "data-index": p }));
    });
    v.ids.forEach((id, p) => {
      S().labels[p].forEach((l) => {
        const x = xOf(l.t);
        chart.appendChild(VC.svgNode("line", { class: "label-mark", x1: x, x2: x, y1: CONF_BOTTOM - 10,
          y2: CONF_BOTTOM + 2, stroke: colour(p), "data-index": p, "data-frame": l.t }));
      });
      S().hidden[p].forEach((t) => {
        const x = xOf(t);
        chart.appendChild(VC.svgNode("line", { class: "hidden-mark", x1: x, x2: x, y1: CONF_BOTTOM - 10,
          y2: CONF_BOTTOM + 2, stroke: colour(p), "data-index": p, "data-frame": t }));
      });
    });
    const x = xOf(frameOf());
    chart.appendChild(VC.svgNode("line", { class: "cursor", x1: x, x2: x, y1: 0, y2: 150 }));
  }

  function cells(tr, values) {
    values.forEach((value) => {
      const td = document.createElement("td");
      if (value instanceof Node) td.appendChild(value);
      else td.textContent = value;
      tr.appendChild(td);
    });
  }

  function swatch(p, id) {
    const span = VC.el("span");
    const dot = VC.el("span", { class: "swatch" });
    dot.style.background = colour(p);
    span.append(dot, document.createTextNode(id));
    return span;
  }

  function renderTables() {
    const v = V(), rk = v.ranking, row = shown().row, t = frameOf();
    const checks = byId("check-rows");
    while (checks.firstChild) checks.removeChild(checks.firstChild);
    rk.check.forEach((r, k) => {
      const tr = VC.el("tr", { "data-frame": v.rows.frames[r], class: r === row ? "current" : "" });
      const why = [];
      if (rk.low[r] > 0) why.push(v.ids[rk.low_point[r]] + ": confidence " + fixed(1 - rk.low[r], 2));
      if (rk.jump[r] > 0) why.push(v.ids[rk.jump_point[r]] + ": jump " + fixed(rk.jump[r], 1) + " px");
      cells(tr, [String(k + 1), String(v.rows.frames[r]), fixed(rk.score[r], 2), why.join("; ")]);
      tr.addEventListener("click", () => {
        checkAt = k;
        goToFrame(v.rows.frames[r]);
      });
      checks.appendChild(tr);
    });
    const points = byId("point-rows");
    while (points.firstChild) points.removeChild(points.firstChild);
    v.ids.forEach((id, p) => {
      const l = labelOn(p, t);
      const here = l ? "label" : hiddenOn(p, t) ? "not visible" : v.rows.visible[row][p] ? "tracked" : "occluded";
      const changed = S().labels[p].some((x) => corrected(p, x)) ||
        S().labels[p].length !== original[video][p].length || S().hidden[p].join() !== v.hidden[p].join();
      const tr = VC.el("tr", { "data-index": p, class: (p === selected ? "selected" : "") + (changed ? " corrected" : "") });
      cells(tr, [swatch(p, id), String(S().labels[p].length) + (changed ? " *" : ""), here,
        l ? "\u2014" : fixed(v.rows.confidence[row][p], 2)]);
      tr.addEventListener("click", () => {
        selected = p;
        render();
      });
      points.appendChild(tr);
    });
  }

  function fileRows(v, s) {
    const rows = [];
    v.ids.forEach((id, p) => {
      const named = DATA.batch ? { video: v.video } : {};
      const entries = s.labels[p].map((l) => ({ ...named, id: id, t: l.t, x: l.x, y: l.y }))
        .concat(s.hidden[p].map((t) => ({ ...named, id: id, t: t, visible: false })));
      entries.sort((a, b) => a.t - b.t);
      rows.push(...entries);
    });
    return rows;
  }

  // The points file: the picker's format, every label (original and corrected) and every "not visible" mark;
  // a batch's names each row's video.
  function fileText() {
    const doc = { format: DATA.format, version: DATA.version };
    if (DATA.batch) {
      doc.points = DATA.videos.flatMap((v, k) => fileRows(v, state[k]));
    } else {
      const v = DATA.videos[0];
      Object.assign(doc, { video: v.video, size: v.size, num_frames: v.num_frames, points: fileRows(v, state[0]) });
    }
    return JSON.stringify(doc, null, 1) + "\n";
  }

  function render() {
    const v = V(), row = shown().row, t = frameOf(), rk = v.ranking;
    const rank = rk.check.indexOf(row);
    byId("frame-label").textContent = "frame " + t + " of " + v.num_frames + " (" + (current + 1) + "/" +
      v.shown.length + " shown)" + (rank >= 0 ? ", to check #" + (rank + 1) : "");
    byId("score").textContent = "score " + fixed(rk.score[row], 2) + " \u2014 lowest confidence " +
      (rk.low_point[row] >= 0 ? fixed(1 - rk.low[row], 2) + " (point " + v.ids[rk.low_point[row]] + ")" : "\u2014") +
      ", largest jump " + (rk.jump_point[row] >= 0 ? fixed(rk.jump[row], 1) + " px (point " +
      v.ids[rk.jump_point[row]] + ")" : "\u2014");
    renderMarkers();
    renderChart();
    renderTables();
    byId("json").textContent = fileText();
    byId("undo").disabled = history.length === 0;
    byId("remove").disabled = selected < 0 || !(labelOn(selected, t) || hiddenOn(selected, t));
    byId("hide").disabled = selected < 0;
    byId("hide").textContent = selected >= 0 && hiddenOn(selected, t) ? "Visible here" : "Not visible here";
  }

  // ------------------------------------------------------------------------------------------ input

  function markerIndex(event) {
    const marker = event.target.closest ? event.target.closest(".marker") : null;
    return marker ? Number(marker.getAttribute("data-index")) : -1;
  }

  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    const p = markerIndex(event);
    selected = p;
    if (p >= 0) {
      drag = { index: p, pointerId: event.pointerId, x: event.clientX, y: event.clientY, moved: false };
      svg.setPointerCapture(event.pointerId);
    }
    render();
  });

  svg.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (!drag.moved && Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < DRAG_START_PX) return;
    const at = VC.toVideo(svg, event, V().size[0], V().size[1]);
    const l = labelOn(drag.index, frameOf());
    if (l && l.x === at.x && l.y === at.y) return;
    if (!drag.moved) record(); // the whole drag is one undo step
    drag.moved = true;
    setLabel(drag.index, frameOf(), at);
    render();
  });

  function endDrag(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (drag.moved) say("point " + V().ids[drag.index] + " is labelled on frame " + frameOf());
    drag = null;
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    render();
  }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  svg.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    const p = markerIndex(event);
    if (p < 0) return;
    selected = p;
    removeHere();
  });

  chart.addEventListener("click", (event) => {
    const box = chart.getBoundingClientRect();
    const frames = V().rows.frames;
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    goNear(frames[0] + fraction * (frames[frames.length - 1] - frames[0]));
  });

  document.addEventListener("keydown", (event) => {
    const inField = event.target === slider || event.target === byId("video-choice");
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeHere();
    } else if (event.key === "h" || event.key === "H") {
      toggleHidden();
    } else if (event.key === "Escape") {
      selected = -1;
      render();
    } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && !inField) {
      event.preventDefault();
      setFrame(current + (event.key === "ArrowLeft" ? -1 : 1));
    } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && !inField) {
      event.preventDefault();
      stepCheck(event.key === "ArrowDown" ? 1 : -1);
    }
  });

  slider.addEventListener("input", () => setFrame(Number(slider.value)));
  byId("prev").addEventListener("click", () => setFrame(current - 1));
  byId("next").addEventListener("click", () => setFrame(current + 1));
  byId("prev-check").addEventListener("click", () => stepCheck(-1));
  byId("next-check").addEventListener("click", () => stepCheck(1));
  byId("undo").addEventListener("click", undo);
  byId("remove").addEventListener("click", removeHere);
  byId("hide").addEventListener("click", toggleHidden);
  byId("save").addEventListener("click", () => VC.download("points.json", fileText()));
  byId("video-choice").addEventListener("change", (event) => showVideo(Number(event.target.value)));
  window.addEventListener("resize", layout);
  image.addEventListener("load", renderMarkers);

  const choice = byId("video-choice");
  DATA.videos.forEach((v, k) => choice.appendChild(VC.el("option", { value: k }, v.name)));
  choice.hidden = DATA.videos.length < 2;
  byId("rule").textContent = DATA.score_rule;
  VC.showCommand(byId("command"), DATA.command);
  showVideo(0);
  document.body.setAttribute("data-ready", "true");
})();
