(function () {
  "use strict";
  // vidcorr pick: click query points on sampled frames; the page's data is the JSON block written by
  // vidcorr.pick. Coordinates are the video's own pixels, pixel centres at +0.5: the overlay's viewBox is
  // "0 0 W H" over the picture, so a pointer at fraction f of the picture's width is at x = f * W.
  const DATA = JSON.parse(document.getElementById("vidcorr-data").textContent);
  const W = DATA.size[0];
  const H = DATA.size[1];
  const FRAMES = DATA.frames;
  const PALETTE = DATA.palette;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MARKER_SCREEN_RADIUS = 7;

  const byId = (id) => document.getElementById(id);
  const svg = byId("overlay");
  const image = byId("frame");
  const slider = byId("slider");

  let current = 0; // index into FRAMES
  let points = []; // [{t, x, y}], in id order
  let history = []; // snapshots of `points` before each change, for undo
  let selected = -1;
  let drag = null; // {index, pointerId, before (snapshot or null when already recorded), moved}

  const snapshot = () => points.map((p) => ({ t: p.t, x: p.x, y: p.y }));
  const colour = (i) => PALETTE[i % PALETTE.length];
  const round2 = (v) => Math.round(v * 100) / 100;
  const frameOf = () => FRAMES[current].frame;

  function record() {
    history.push(snapshot());
  }

  function toVideo(event) {
    const box = svg.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * W;
    const y = ((event.clientY - box.top) / box.height) * H;
    return { x: round2(Math.min(W, Math.max(0, x))), y: round2(Math.min(H, Math.max(0, y))) };
  }

  function markerIndex(event) {
    const marker = event.target.closest ? event.target.closest(".marker") : null;
    return marker ? Number(marker.getAttribute("data-index")) : -1;
  }

  // The picture fills the column (up to 78 % of the window's height) whatever the embedded picture's own
  // size: small videos are enlarged, large ones shrunk; the overlay follows the picture's box.
  function layout() {
    const column = document.querySelector(".viewer").clientWidth;
    const scale = Math.max(0.05, Math.min(column / W, (window.innerHeight * 0.78) / H));
    image.style.width = Math.floor(W * scale) + "px";
    image.style.height = Math.floor(H * scale) + "px";
    renderMarkers();
  }

  function setFrame(index) {
    current = Math.max(0, Math.min(FRAMES.length - 1, index));
    slider.value = String(current);
    image.src = FRAMES[current].src;
    render();
  }

  function remove(index) {
    if (index < 0 || index >= points.length) return;
    record();
    points.splice(index, 1);
    selected = points.length ? Math.min(index, points.length - 1) : -1;
    render();
  }

  function undo() {
    if (!history.length) return;
    points = history.pop();
    drag = null;
    if (selected >= points.length) selected = points.length - 1;
    render();
  }

  // ------------------------------------------------------------------------------------------ drawing

  function renderMarkers() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const box = svg.getBoundingClientRect();
    const scale = box.width > 0 ? W / box.width : 1;
    const r = MARKER_SCREEN_RADIUS * scale;
    const t = frameOf();
    points.forEach((p, i) => {
      if (p.t !== t) return;
      const g = document.createElementNS(SVG_NS, "g");
      g.setAttribute("class", "marker" + (i === selected ? " selected" : "") +
        (drag && drag.index === i ? " dragging" : ""));
      g.setAttribute("data-index", String(i));
      const ring = document.createElementNS(SVG_NS, "circle");
      ring.setAttribute("class", "ring");
      ring.setAttribute("cx", String(p.x));
      ring.setAttribute("cy", String(p.y));
      ring.setAttribute("r", String(r * 1.6));
      ring.setAttribute("stroke-width", String(2 * scale));
      ring.setAttribute("fill", "transparent");
      const dot = document.createElementNS(SVG_NS, "circle");
      dot.setAttribute("class", "dot");
      dot.setAttribute("cx", String(p.x));
      dot.setAttribute("cy", String(p.y));
      dot.setAttribute("r", String(r));
      dot.setAttribute("fill", colour(i));
      dot.setAttribute("stroke-width", String(1.5 * scale));
      const label = document.createElementNS(SVG_NS, "text");
      label.setAttribute("x", String(p.x + r * 1.3));
      label.setAttribute("y", String(p.y - r * 1.3));
      label.setAttribute("font-size", String(14 * scale));
      label.setAttribute("stroke-width", String(3 * scale));
      label.setAttribute("fill", colour(i));
      label.textContent = String(i);
      g.append(ring, dot, label);
      svg.appendChild(g);
    });
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function renderTable() {
    const body = byId("point-rows");
    while (body.firstChild) body.removeChild(body.firstChild);
    const t = frameOf();
    points.forEach((p, i) => {
      const tr = document.createElement("tr");
      tr.setAttribute("data-index", String(i));
      tr.className = (p.t === t ? "current" : "") + (i === selected ? " selected" : "");
      const id = document.createElement("td");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour(i);
      id.append(swatch, document.createTextNode(String(i)));
      const del = document.createElement("button");
      del.type = "button";
      del.className = "remove";
      del.title = "remove point " + i;
      del.textContent = "\u00d7";
      del.addEventListener("click", (event) => {
        event.stopPropagation();
        remove(i);
      });
      const last = document.createElement("td");
      last.appendChild(del);
      tr.append(id, cell(String(p.t)), cell(p.x.toFixed(2)), cell(p.y.toFixed(2)), last);
      tr.addEventListener("click", () => {
        selected = i;
        const k = FRAMES.findIndex((f) => f.frame === p.t);
        if (k >= 0) setFrame(k);
        else render();
      });
      body.appendChild(tr);
    });
    const frames = new Set(points.map((p) => p.t));
    byId("count").textContent = points.length
      ? points.length + " point" + (points.length === 1 ? "" : "s") + " on " + frames.size + " frame" +
        (frames.size === 1 ? "" : "s")
      : "No points yet: click the frame.";
  }

  function fileText() {
    const doc = {
      format: DATA.format, version: DATA.version, video: DATA.video, size: [W, H],
      num_frames: DATA.num_frames,
      points: points.map((p, i) => ({ id: i, t: p.t, x: p.x, y: p.y })),
    };
    return JSON.stringify(doc, null, 1) + "\n";
  }

  function renderCommands() {
    const base = "vidcorr track " + DATA.video_arg;
    byId("command").textContent = points.length ? base + " --points-file points.json" : "(add points first)";
    const frames = new Set(points.map((p) => p.t));
    const alt = byId("alt-block");
    alt.hidden = frames.size !== 1;
    if (frames.size === 1) {
      const list = points.map((p) => String(p.x) + "," + String(p.y)).join(";");
      byId("command-points").textContent = base + ' --points "' + list + '" --ref-frame ' + points[0].t;
    } else {
      byId("command-points").textContent = "";
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
  }

  // ------------------------------------------------------------------------------------------ input

  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    let index = markerIndex(event);
    let before = snapshot();
    if (index < 0) {
      record(); // the add is one undo step, and a drag that follows it belongs to it
      before = null;
      const at = toVideo(event);
      points.push({ t: frameOf(), x: at.x, y: at.y });
      index = points.length - 1;
    }
    selected = index;
    drag = { index: index, pointerId: event.pointerId, before: before, moved: false };
    svg.setPointerCapture(event.pointerId);
    render();
  });

  svg.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const at = toVideo(event);
    const p = points[drag.index];
    if (p.x === at.x && p.y === at.y) return;
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
    remove(markerIndex(event));
  });

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      if (selected >= 0) {
        event.preventDefault();
        remove(selected);
      }
    } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && event.target !== slider) {
      event.preventDefault();
      setFrame(current + (event.key === "ArrowLeft" ? -1 : 1));
    }
  });

  slider.addEventListener("input", () => setFrame(Number(slider.value)));
  byId("prev").addEventListener("click", () => setFrame(current - 1));
  byId("next").addEventListener("click", () => setFrame(current + 1));
  byId("undo").addEventListener("click", undo);
  byId("clear").addEventListener("click", () => {
    if (!points.length) return;
    record();
    points = [];
    selected = -1;
    render();
  });
  byId("save").addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([fileText()], { type: "application/json" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = "points.json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
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
