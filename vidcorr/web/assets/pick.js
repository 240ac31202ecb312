(function () {
  "use strict";
  // vidcorr pick: click query points on sampled frames, a point on one frame or several (its labels); the
  // page's data is the JSON block written by vidcorr.web.pick. Coordinates are the video's own pixels, pixel centres at +0.5: the overlay's viewBox is
  // "0 0 W H" over the picture, so a pointer at fraction f of the picture's width is at x = f * W.
  const DATA = VC.data();
  const W = DATA.size[0];
  const H = DATA.size[1];
  const FRAMES = DATA.frames;
  const PALETTE = DATA.palette;
  const MARKER_SCREEN_RADIUS = 7;

  const byId = (id) => document.getElementById(id);
  const svg = byId("overlay");
  const image = byId("frame");
  const slider = byId("slider");

  let current = 0; // index into FRAMES
  // Point i (id i) has labels [{t, x, y}] on distinct frames, sorted by t; a point with no label is removed.
  let points = [];
  let history = []; // snapshots of `points` before each change, for undo
  let selected = -1; // the selected point: a click on a frame where it has no label adds one there
  let drag = null; // {index, pointerId, before (snapshot or null when already recorded), moved}

  const snapshot = () => points.map((p) => ({ labels: p.labels.map((l) => ({ t: l.t, x: l.x, y: l.y })) }));
  const colour = (i) => PALETTE[i % PALETTE.length];
  const frameOf = () => FRAMES[current].frame;
  const labelOn = (p, t) => p.labels.find((l) => l.t === t) || null;
  const labelCount = () => points.reduce((n, p) => n + p.labels.length, 0);
  const labelledFrames = () => new Set(points.flatMap((p) => p.labels.map((l) => l.t)));
  const plural = VC.plural;

  // The label nearest in time to frame t (on a tie the earlier one), as the tracker anchors a frame.
  function nearest(p, t) {
    let best = null;
    p.labels.forEach((l) => {
      const d = Math.abs(l.t - t);
      if (best === null || d < Math.abs(best.t - t) || (d === Math.abs(best.t - t) && l.t < best.t)) best = l;
    });
    return best;
  }

  function record() {
    history.push(snapshot());
  }

  const toVideo = (event) => VC.toVideo(svg, event, W, H);

  function markerIndex(event) {
    const marker = event.target.closest ? event.target.closest(".marker") : null;
    return marker ? Number(marker.getAttribute("data-index")) : -1;
  }

  // The picture fills the column (up to 78 % of the window's height) whatever the embedded picture's own
  // size: small videos are enlarged, large ones shrunk; the overlay follows the picture's box.
  function layout() {
    VC.fitPicture(image, document.querySelector(".viewer").clientWidth, W, H, 0.78);
    renderMarkers();
  }

  function setFrame(index) {
    current = Math.max(0, Math.min(FRAMES.length - 1, index));
    slider.value = String(current);
    image.src = FRAMES[current].src;
    render();
  }

  function select(index) {
    selected = index;
    render();
  }

  // Remove point `index`'s label on frame t; the point goes with its last label (later ids close up).
  function removeLabel(index, t) {
    if (index < 0 || index >= points.length || !labelOn(points[index], t)) return;
    record();
    const p = points[index];
    p.labels = p.labels.filter((l) => l.t !== t);
    if (!p.labels.length) {
      points.splice(index, 1);
      if (selected === index) selected = -1;
      else if (selected > index) selected -= 1;
    }
    render();
  }

  function undo() {
    if (!history.length) return;
    points = history.pop();
    drag = null;
    if (selected >= points.length) selected = -1;
    render();
  }

  // ------------------------------------------------------------------------------------------ drawing

  const svgNode = VC.svgNode;

  function idText(i, l, r, scale) {
    const text = svgNode("text", { x: l.x + r * 1.3, y: l.y - r * 1.3, "font-size": 14 * scale,
      "stroke-width": 3 * scale, fill: colour(i) });
    text.textContent = String(i);
    return text;
  }

  function renderMarkers() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const box = svg.getBoundingClientRect();
    const scale = box.width > 0 ? W / box.width : 1;
    const r = MARKER_SCREEN_RADIUS * scale;
    const t = frameOf();
    // Ghosts first (underneath): points with labels on other frames only, at their label nearest in time.
    points.forEach((p, i) => {
      if (labelOn(p, t) || !p.labels.length) return;
      const l = nearest(p, t);
      const g = svgNode("g", { class: "ghost" + (i === selected ? " selected" : ""), "data-index": i,
        "data-frame": l.t });
      g.append(svgNode("circle", { class: "hollow", cx: l.x, cy: l.y, r: r, stroke: colour(i),
        "stroke-width": 2 * scale, fill: "none" }), idText(i, l, r, scale));
      svg.appendChild(g);
    });
    points.forEach((p, i) => {
      const l = labelOn(p, t);
      if (!l) return;
      const g = svgNode("g", { class: "marker" + (i === selected ? " selected" : "") +
        (drag && drag.index === i ? " dragging" : ""), "data-index": i });
      g.append(svgNode("circle", { class: "ring", cx: l.x, cy: l.y, r: r * 1.6, "stroke-width": 2 * scale,
        fill: "transparent" }),
      svgNode("circle", { class: "dot", cx: l.x, cy: l.y, r: r, fill: colour(i), "stroke-width": 1.5 * scale }),
      idText(i, l, r, scale));
      svg.appendChild(g);
    });
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  // One row per label, point by point, each point's labels by frame.
  function renderTable() {
    const body = byId("point-rows");
    while (body.firstChild) body.removeChild(body.firstChild);
    const t = frameOf();
    points.forEach((p, i) => {
      p.labels.forEach((l) => {
        const tr = document.createElement("tr");
        tr.setAttribute("data-index", String(i));
        tr.setAttribute("data-frame", String(l.t));
        tr.className = (l.t === t ? "current" : "") + (i === selected ? " selected" : "");
        const id = document.createElement("td");
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = colour(i);
        id.append(swatch, document.createTextNode(String(i)));
        const del = document.createElement("button");
        del.type = "button";
        del.className = "remove";
        del.title = "remove the label of point " + i + " on frame " + l.t;
        del.textContent = "\u00d7";
        del.addEventListener("click", (event) => {
          event.stopPropagation();
          removeLabel(i, l.t);
        });
        const last = document.createElement("td");
        last.appendChild(del);
        tr.append(id, cell(String(l.t)), cell(l.x.toFixed(2)), cell(l.y.toFixed(2)), last);
        tr.addEventListener("click", () => {
          selected = i;
          const k = FRAMES.findIndex((f) => f.frame === l.t);
          if (k >= 0) setFrame(k);
          else render();
        });
        body.appendChild(tr);
      });
    });
    const labels = labelCount();
    byId("count").textContent = points.length
      ? plural(points.length, "point") + ", " + plural(labels, "label") + " on " +
        plural(labelledFrames().size, "frame")
      : "No points yet: click the frame.";
    byId("mode").textContent = selected >= 0
      ? "Point " + selected + " is selected: a click on a frame where it has no label labels it there. " +
        "Esc or New point to start another."
      : "A click adds a new point.";
  }

  function fileText() {
    const doc = {
      format: DATA.format, version: DATA.version, video: DATA.video, size: [W, H],
      num_frames: DATA.num_frames,
      points: points.flatMap((p, i) => p.labels.map((l) => ({ id: i, t: l.t, x: l.x, y: l.y }))),
    };
    return JSON.stringify(doc, null, 1) + "\n";
  }

  const showCommand = VC.showCommand;

  function renderCommands() {
    const base = "vidcorr track " + DATA.video_arg;
    showCommand(byId("command"), points.length ? base + " --points-file points.json" : "(add points first)");
    const frames = labelledFrames();
    const alt = byId("alt-block");
    alt.hidden = frames.size !== 1;
    if (frames.size === 1) { // then every point has one label, on that frame
      const list = points.map((p) => String(p.labels[0].x) + "," + String(p.labels[0].y)).join(";");
      showCommand(byId("command-points"), base + ' --points "' + list + '" --ref-frame ' + points[0].labels[0].t);
    } else {
      showCommand(byId("command-points"), "");
    }
    byId("json").textContent = fileText();
  }

  function render() {
    const f = FRAMES[current];
    byId("frame-label").textContent = "frame " + f.frame + " of " + DATA.num_frames + " (" + (current + 1) +
      "/" + FRAMES.length + " shown)";
    renderMarkers();
    renderTable();
    renderCommands();
    byId("undo").disabled = history.length === 0;
    byId("clear").disabled = points.length === 0;
    byId("save").disabled = points.length === 0;
    byId("new-point").disabled = selected < 0;
  }

  // ------------------------------------------------------------------------------------------ input

  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    const t = frameOf();
    let index = markerIndex(event);
    let before = snapshot();
    if (index < 0) {
      record(); // the add is one undo step, and a drag that follows it belongs to it
      before = null;
      const at = toVideo(event);
      const label = { t: t, x: at.x, y: at.y };
      if (selected >= 0 && !labelOn(points[selected], t)) { // another label of the selected point
        index = selected;
        points[index].labels.push(label);
        points[index].labels.sort((a, b) => a.t - b.t);
      } else {
        points.push({ labels: [label] });
        index = points.length - 1;
      }
    }
    selected = index;
    drag = { index: index, pointerId: event.pointerId, before: before, moved: false };
    svg.setPointerCapture(event.pointerId);
    render();
  });

  svg.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const at = toVideo(event);
    const p = labelOn(points[drag.index], frameOf());
    if (!p || (p.x === at.x && p.y === at.y)) return;
    if (!drag.moved && drag.before) history.push(drag.before);
    drag.moved = true;
    p.x = at.x;
    p.y = at.y;
    render();
  });

  function endDrag(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    drag = null;
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    render();
  }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  svg.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    removeLabel(markerIndex(event), frameOf());
  });

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      if (selected >= 0) {
        event.preventDefault();
        removeLabel(selected, frameOf());
      }
    } else if (event.key === "Escape") {
      select(-1);
    } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && event.target !== slider) {
      event.preventDefault();
      setFrame(current + (event.key === "ArrowLeft" ? -1 : 1));
    }
  });

  slider.addEventListener("input", () => setFrame(Number(slider.value)));
  byId("prev").addEventListener("click", () => setFrame(current - 1));
  byId("next").addEventListener("click", () => setFrame(current + 1));
  byId("undo").addEventListener("click", undo);
  byId("new-point").addEventListener("click", () => select(-1));
  byId("clear").addEventListener("click", () => {
    if (!points.length) return;
    record();
    points = [];
    selected = -1;
    render();
  });
  byId("save").addEventListener("click", () => VC.download("points.json", fileText()));
  window.addEventListener("resize", layout);
  image.addEventListener("load", renderMarkers);

  document.title = "vidcorr pick \u2014 " + DATA.file_name;
  byId("video-name").textContent = DATA.video;
  byId("video-meta").textContent = W + "\u00d7" + H + ", " + DATA.num_frames + " frames, " +
    Math.round(DATA.fps * 100) / 100 + " fps";
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  slider.max = String(FRAMES.length - 1);
  layout();
  setFrame(0);
  document.body.setAttribute("data-ready", "true");
})();
