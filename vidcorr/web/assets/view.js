
(function () {
  "use strict";
  const DATA = VC.data();
  const byId = (id) => document.getElementById(id);
  const el = VC.el; // every node that shows data is built with it: text goes in through textContent only
  const svgEl = VC.svgNode;
  function setMeta(dl, rows) {
    dl.replaceChildren();
    for (const [key, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      const row = el("div");
      row.append(el("dt", null, key), el("dd", null, value));
      dl.append(row);
    }
  }
  const fixed = (v, digits) => (v === null || v === undefined ? "\u2014" : Number(v).toFixed(digits));
  const showXY = (p) => (p ? p[0].toFixed(1) + ", " + p[1].toFixed(1) : "\u2014");
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  document.title = "vidcorr viewer \u2014 " + DATA.title;
  byId("page-title").textContent = DATA.title;

  const views = [];
  if (DATA.videos && DATA.videos.length) views.push(["videos", "Videos"]);
  if (DATA.pairs.length) views.push(["pairs", "Pairs"]);
  if (DATA.tracks) views.push(["tracks", "Tracks"]);
  let activeView = null;
  function showView(name) {
    activeView = name;
    for (const [view] of views) {
      byId(view + "-view").hidden = view !== name;
      byId("tab-" + view).setAttribute("aria-selected", String(view === name));
    }
    if (name === "tracks") redrawTracks();
  }
  window.addEventListener("resize", () => { if (activeView === "tracks") redrawTracks(); });
  for (const [view, label] of views) {
    const tab = el("button", { id: "tab-" + view, type: "button", role: "tab" }, label);
    tab.addEventListener("click", () => showView(view));
    byId("tabs").append(tab);
  }

  // ----------------------------------------------------------------------------------------- videos
  // A batch's folder: one row per video, linking to the page written in that video's own folder.
  function setUpVideos() {
    const rows = byId("video-table").querySelector("tbody");
    const done = DATA.videos.filter((v) => v.page).length;
    byId("video-summary").textContent = DATA.videos.length + " videos, " + done + " with a page";
    for (const v of DATA.videos) {
      const link = v.page ? el("a", { href: v.page }, "open") : el("span", { class: "muted" }, v.error || "\u2014");
      const name = el("td", {}, v.name);
      name.title = v.video;
      const cells = [name, el("td", {}, v.status), el("td", {}, String(v.frames)), el("td", {}, String(v.points))];
      const last = el("td");
      last.append(link);
      const tr = el("tr");
      tr.append(...cells, last);
      rows.append(tr);
    }
  }
  if (DATA.videos && DATA.videos.length) setUpVideos();

  // ------------------------------------------------------------------------------------------ pairs
  const pairs = DATA.pairs;
  const P = { shown: [], pair: -1, point: -1 };
  const verdictClass = (correct) => (correct === true ? "correct" : correct === false ? "wrong" : "none");

  function setUpPairs() {
    const categories = [...new Set(pairs.map((p) => p.category).filter((c) => c !== null))].sort();
    categories.forEach((category, i) => {
      byId("filter-category").append(el("option", { value: String(i + 1) }, category));
    });
    P.categories = categories;
    for (const pair of pairs) {
      const flags = pair.points.map((p) => p.correct).filter((c) => c !== null);
      pair.verdict = flags.length === 0 ? "none" : flags.every(Boolean) ? "correct" : "wrong";
      pair.search = [pair.id, pair.category, pair.src_name, pair.trg_name].filter(Boolean).join(" ").toLowerCase();
    }
    if (!categories.length) hideFilter("filter-category");
    if (pairs.every((p) => p.verdict === "none")) hideFilter("filter-verdict");
    for (const id of ["filter-category", "filter-verdict", "sort-pairs"]) {
      byId(id).addEventListener("change", applyFilters);
    }
    byId("filter-text").addEventListener("input", applyFilters);
    applyFilters();
  }
  function hideFilter(id) {
    byId(id).hidden = true;
    document.querySelector('label[for="' + id + '"]').hidden = true;
  }

  function applyFilters() {
    const categoryChoice = byId("filter-category").value;
    const category = categoryChoice ? P.categories[Number(categoryChoice) - 1] : null;
    const verdict = byId("filter-verdict").value;
    const text = byId("filter-text").value.trim().toLowerCase();
    const order = byId("sort-pairs").value;
    const shown = [];
    pairs.forEach((pair, i) => {
      if (category !== null && pair.category !== category) return;
      if (verdict !== "all" && pair.verdict !== verdict) return;
      if (text && !pair.search.includes(text)) return;
      shown.push(i);
    });
    if (order !== "id") {
      const sign = order === "pck-asc" ? 1 : -1;
      shown.sort((a, b) => {
        const x = pairs[a].pck, y = pairs[b].pck;
        if (x === null || y === null) return (x === null) - (y === null) || a - b;
        return sign * (x - y) || a - b;
      });
    }
    P.shown = shown;
    renderPairList();
    if (!shown.includes(P.pair)) selectPair(shown.length ? shown[0] : -1, 0);
    else markPairList();
  }

  function renderPairList() {
    const list = byId("pair-list");
    const items = document.createDocumentFragment();
    for (const i of P.shown) {
      const pair = pairs[i];
      const button = el("button", { type: "button", "data-index": i });
      const name = el("span", { class: "name" }, pair.id);
      const sub = [pair.category, pair.src_name && pair.trg_name ? pair.src_name + " \u2192 " + pair.trg_name : null];
      name.append(el("span", { class: "sub" }, sub.filter(Boolean).join(" \u00b7 ")));
      button.append(el("span", { class: "dot " + pair.verdict }), name,
        el("span", { class: "score" }, pair.pck === null ? "\u2014" : pair.pck.toFixed(1)));
      button.addEventListener("click", () => selectPair(i, 0));
      const item = el("li");
      item.append(button);
      items.append(item);
    }
    list.replaceChildren(items);
    const scored = P.shown.map((i) => pairs[i].pck).filter((v) => v !== null);
    let summary = P.shown.length + " of " + pairs.length + " pairs";
    if (scored.length) {
      const first = pairs[P.shown[0]];
      const label = "PCK" + (first.alpha !== null ? "@" + first.alpha : "") +
        (first.protocol ? " (" + first.protocol + ")" : "");
      summary += " \u00b7 mean " + label + " " + (scored.reduce((s, v) => s + v, 0) / scored.length).toFixed(1);
    }
    byId("pair-summary").textContent = summary;
  }

  function markPairList() {
    for (const button of byId("pair-list").querySelectorAll("button")) {
      const current = Number(button.dataset.index) === P.pair;
      button.setAttribute("aria-current", String(current));
      if (current) button.scrollIntoView({ block: "nearest" });
    }
  }

  function selectPair(i, point) {
    P.pair = i;
    markPairList();
    const content = byId("pairs-view").querySelector(".content");
    content.hidden = i < 0;
    if (i < 0) return;
    const pair = pairs[i];
    byId("pair-title").textContent = pair.id;
    setMeta(byId("pair-meta"), [
      ["category", pair.category], ["source", pair.src_name], ["target", pair.trg_name],
      ["PCK", pair.pck === null ? null : pair.pck.toFixed(1) + (pair.alpha !== null ? " @ \u03b1 " + pair.alpha : "")],
      ["protocol", pair.protocol], ["dataset", pair.dataset], ["points", pair.points.length],
    ]);
    const image = byId("pair-image");
    byId("pair-stage").hidden = !pair.image;
    byId("pair-missing").hidden = Boolean(pair.image);
    if (pair.image) image.setAttribute("src", pair.image);
    drawPairOverlay(pair);
    const chips = byId("point-chips");
    chips.replaceChildren();
    pair.points.forEach((pt, k) => {
      const chip = el("button", { type: "button", class: verdictClass(pt.correct), "data-point": k,
        title: "point " + k + (pt.kps_id !== null ? " (keypoint " + pt.kps_id + ")" : "") }, k);
      chip.addEventListener("click", () => selectPoint(k));
      chips.append(chip);
    });
    selectPoint(clamp(point, 0, pair.points.length - 1));
  }

  function drawPairOverlay(pair) {
    const overlay = byId("pair-overlay");
    overlay.replaceChildren();
    const drawable = pair.image && pair.width && pair.height && pair.src_width !== null;
    overlay.hidden = !drawable;
    if (!drawable) return;
    overlay.setAttribute("viewBox", "0 0 " + pair.width + " " + pair.height);
    // The radius the pair picture's own markers have (vidcorr.render.default_radius), so ours cover them.
    const radius = Math.max(5, Math.round(0.01 * Math.min(Math.max(pair.src_width, pair.width - pair.src_width),
      pair.height)));
    pair.points.forEach((pt, k) => {
      if (!pt.src || !pt.pred) return;
      const ends = { x1: pt.src[0], y1: pt.src[1], x2: pt.pred[0] + pair.src_width, y2: pt.pred[1] };
      const group = svgEl("g", { class: "corr " + verdictClass(pt.correct), "data-point": k });
      group.append(svgEl("line", Object.assign({ class: "halo" }, ends)),
        svgEl("line", Object.assign({ class: "line" }, ends)),
        svgEl("circle", { cx: ends.x1, cy: ends.y1, r: radius }),
        svgEl("circle", { cx: ends.x2, cy: ends.y2, r: radius }),
        svgEl("line", Object.assign({ class: "hit" }, ends)));
      const title = svgEl("title");
      title.textContent = "point " + k;
      group.append(title);
      group.addEventListener("click", () => selectPoint(k));
      overlay.append(group);
    });
  }

  function selectPoint(k) {
    const pair = pairs[P.pair];
    if (!pair || !pair.points.length) { P.point = -1; byId("point-panel").hidden = true; return; }
    byId("point-panel").hidden = false;
    P.point = k;
    const pt = pair.points[k];
    const overlay = byId("pair-overlay");
    for (const group of overlay.querySelectorAll("g.corr")) {
      const selected = Number(group.dataset.point) === k;
      group.classList.toggle("selected", selected);
      if (selected) overlay.append(group);  // drawn last: on top
    }
    const oldTruth = overlay.querySelector("g.truth");
    if (oldTruth) oldTruth.remove();
    if (!overlay.hidden && pt.truth) {
      const truth = svgEl("g", { class: "truth" });
      const tx = pt.truth[0] + pair.src_width, ty = pt.truth[1];
      if (pt.pred) truth.append(svgEl("line", { x1: pt.pred[0] + pair.src_width, y1: pt.pred[1], x2: tx, y2: ty }));
      truth.append(svgEl("circle", { cx: tx, cy: ty, r: Math.max(3, 0.012 * Math.max(pair.width, pair.height)) }));
      overlay.append(truth);
    }
    for (const chip of byId("point-chips").querySelectorAll("button")) {
      chip.setAttribute("aria-pressed", String(Number(chip.dataset.point) === k));
    }
    byId("point-title").textContent = "Point " + k + (pt.kps_id !== null ? " \u00b7 keypoint " + pt.kps_id : "");
    const verdicts = Object.entries(pt.verdicts).map(([protocol, flags]) => protocol + ": " +
      Object.entries(flags).map(([alpha, ok]) => alpha + (ok ? " \u2713" : " \u2717")).join(" ")).join("; ");
    setMeta(byId("point-meta"), [
      ["source", showXY(pt.src)], ["predicted", showXY(pt.pred)], ["truth", pt.truth ? showXY(pt.truth) : null],
      ["verdict", pt.correct === null ? "no ground truth" : pt.correct ? "correct" : "wrong"],
      ["confidence", pt.confidence === null ? null : fixed(pt.confidence, 3)], ["by protocol", verdicts || null],
    ]);
    showTiles(byId("maps-src"), pt.maps && pt.maps.src, pt.maps ? pt.maps.tiles : [], k, "source");
    showTiles(byId("maps-trg"), pt.maps && pt.maps.trg, pt.maps ? pt.maps.tiles : [], k, "target");
  }

  // A map strip holds one tile per layer and the mean, side by side: each tile shows its slice of it.
  function showTiles(container, url, tiles, k, side) {
    container.replaceChildren();
    container.dataset.point = String(k);
    if (!url) {
      container.append(el("p", { class: "missing" }, "No attention maps were saved for this point."));
      return;
    }
    tiles.forEach((name, i) => {
      const tile = el("figure", { class: "tile" });
      const box = el("div", { class: "box" });
      const image = el("img", { src: url, alt: side + " " + name + ", point " + k, "data-point": k });
      image.style.width = tiles.length * 100 + "%";
      image.style.marginLeft = -i * 100 + "%";
      box.append(image);
      tile.append(box, el("figcaption", null, name));
      container.append(tile);
    });
  }

  function movePair(step) {
    if (!P.shown.length) return;
    const at = P.shown.indexOf(P.pair);
    selectPair(P.shown[at < 0 ? 0 : clamp(at + step, 0, P.shown.length - 1)], 0);
  }
  function movePoint(step) {
    const pair = pairs[P.pair];
    if (pair && pair.points.length) selectPoint(clamp(P.point + step, 0, pair.points.length - 1));
  }

  // ----------------------------------------------------------------------------------------- tracks
  const T = DATA.tracks;
  const S = { frame: 0, point: -1 };

  function setUpTracks() {
    const [width, height] = T.size;
    setMeta(byId("track-meta"), [
      ["video", T.video], ["size", width + " \u00d7 " + height], ["fps", T.fps === null ? null : fixed(T.fps, 2)],
      ["points", T.points.length], ["tracked frames", T.rows.frames.length], ["key frames", T.frames.length],
    ]);
    const list = byId("track-point-list");
    for (const point of T.points) {
      const button = el("button", { type: "button", "data-point": point.id });
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = point.color;
      const name = el("span", { class: "name" }, pointName(point));
      name.append(el("span", { class: "sub" }, point.query_frame === null ? "global search"
        : "frame " + point.query_frame + " at " + showXY(point.query_xy)));
      button.append(swatch, name, el("span"));
      button.addEventListener("click", () => selectTrackPoint(point.id));
      const item = el("li");
      item.append(button);
      list.append(item);
    }
    for (const id of ["ref-overlay", "cur-overlay"]) byId(id).setAttribute("viewBox", "0 0 " + width + " " + height);
    const slider = byId("frame-slider");
    slider.max = String(Math.max(0, T.frames.length - 1));
    slider.addEventListener("input", () => showFrame(Number(slider.value)));
    byId("frame-prev").addEventListener("click", () => showFrame(S.frame - 1));
    byId("frame-next").addEventListener("click", () => showFrame(S.frame + 1));
    byId("show-heat").addEventListener("change", () => { drawReference(); showFrame(S.frame); });
    showFrame(0);
    drawReference();
    selectTrackPoint(-1);
    setUpAnnotated();
  }

  function pointName(point) {
    return point.name ? point.id + " " + point.name : "point " + point.id;
  }

  // A benchmark's ground truth (JHMDB): a hollow square per point, joined to the prediction by a dashed line.
  function truthMarker(overlay, point, xy, truth) {
    const unit = unitsPerPixel(overlay);
    const r = 5 * unit;
    const group = svgEl("g", { class: "gt" + (point.id === S.point ? " selected" : ""), "data-point": point.id });
    if (xy) group.append(svgEl("line", { x1: xy[0], y1: xy[1], x2: truth[0], y2: truth[1], stroke: point.color }));
    group.append(svgEl("rect", { x: truth[0] - r, y: truth[1] - r, width: 2 * r, height: 2 * r,
      stroke: point.color }));
    const title = svgEl("title");
    title.textContent = pointName(point) + ": ground truth";
    group.append(title);
    return group;
  }

  // The whole annotated video (H.264), played inline; an mp4v fallback file gets a note instead.
  function setUpAnnotated() {
    const video = T.annotated;
    if (!video) return;
    byId("annotated-panel").hidden = false;
    byId("annotated-caption").textContent = "annotated video: " + video.name
      + (video.codec ? " (" + video.codec + ")" : "");
    const note = byId("annotated-note");
    if (video.playable === false) {
      note.textContent = "Browsers do not play " + video.codec + ": re-render it with PyAV installed (H.264).";
      note.hidden = false;
      byId("annotated-video").hidden = true;
      return;
    }
    byId("annotated-video").src = video.url;
  }

  // Markers and labels keep their size on screen whatever the video's: sizes in CSS pixels times the overlay's
  // user units per pixel (1 until it is laid out).
  function unitsPerPixel(overlay) {
    const width = overlay.getBoundingClientRect().width;
    return width > 0 ? T.size[0] / width : 1;
  }

  function marker(overlay, point, xy, visible) {
    const group = svgEl("g", { class: "marker" + (point.id === S.point ? " selected" : ""), "data-point": point.id });
    const unit = unitsPerPixel(overlay);
    const r = 6 * unit;
    group.append(svgEl("circle", { class: "ring", cx: xy[0], cy: xy[1], r: r }));
    const dot = svgEl("circle", { cx: xy[0], cy: xy[1], r: r, stroke: point.color,
      fill: visible ? point.color : "none" });
    const label = svgEl("text", { x: xy[0] + r + 2 * unit, y: xy[1] - r - 2 * unit, fill: point.color,
      "font-size": 12 * unit });
    label.textContent = String(point.id);
    const title = svgEl("title");
    title.textContent = pointName(point);
    group.append(dot, label, svgEl("circle", { class: "hit", cx: xy[0], cy: xy[1], r: 2 * r }), title);
    group.addEventListener("click", () => selectTrackPoint(point.id));
    return group;
  }

  function redrawTracks() {
    drawReference();
    showFrame(S.frame);
  }

  function setHeat(image, url) {
    const show = Boolean(url) && byId("show-heat").checked;
    image.hidden = !show;
    if (show) image.setAttribute("src", url); else image.removeAttribute("src");
  }

  function referenceFrame() {
    const point = T.points[S.point >= 0 ? S.point : 0];
    if (!point || point.query_frame === null) return null;
    return T.references.find((r) => r.frame === point.query_frame) || null;
  }

  function drawReference() {
    const ref = referenceFrame();
    const overlay = byId("ref-overlay");
    overlay.replaceChildren();
    byId("ref-image").hidden = !ref;
    if (!ref) {
      byId("ref-caption").textContent = "no reference frame (the embeddings came from elsewhere: global search)";
      setHeat(byId("ref-heat"), null);
      return;
    }
    byId("ref-caption").textContent = "reference: frame " + ref.frame;
    byId("ref-image").setAttribute("src", ref.image);
    for (const point of T.points) {
      if (point.query_frame === ref.frame && point.query_xy) {
        overlay.append(marker(overlay, point, point.query_xy, true));
      }
    }
    setHeat(byId("ref-heat"), S.point >= 0 ? ref.heat[S.point] : null);
  }

  function showFrame(k) {
    if (!T.frames.length) return;
    S.frame = clamp(k, 0, T.frames.length - 1);
    const key = T.frames[S.frame];
    byId("frame-slider").value = String(S.frame);
    byId("frame-label").textContent =
      "frame " + key.frame + " (key frame " + (S.frame + 1) + " of " + T.frames.length + ")";
    byId("cur-caption").textContent = "frame " + key.frame;
    byId("cur-image").setAttribute("src", key.image);
    const overlay = byId("cur-overlay");
    overlay.replaceChildren();
    const first = Math.max(0, key.row - T.trail);
    for (const point of T.points) {
      let path = [];
      const flush = () => {
        if (path.length > 1) {
          overlay.append(svgEl("polyline", { class: "trail", stroke: point.color, points: path.join(" ") }));
        }
        path = [];
      };
      for (let row = first; row <= key.row; row++) {
        const xy = T.rows.points[row][point.id];
        if (xy && T.rows.visible[row][point.id]) path.push(xy[0] + "," + xy[1]); else flush();
      }
      flush();
    }
    if (T.truth) {
      for (const point of T.points) {
        const truth = T.truth[key.row][point.id];
        if (truth) overlay.append(truthMarker(overlay, point, T.rows.points[key.row][point.id], truth));
      }
    }
    for (const point of T.points) {
      const xy = T.rows.points[key.row][point.id];
      if (xy) overlay.append(marker(overlay, point, xy, T.rows.visible[key.row][point.id]));
    }
    setHeat(byId("cur-heat"), S.point >= 0 ? key.heat[S.point] : null);
    describeTrackPoint();
  }

  function selectTrackPoint(id) {
    S.point = id;
    for (const button of byId("track-point-list").querySelectorAll("button")) {
      button.setAttribute("aria-current", String(Number(button.dataset.point) === id));
    }
    drawReference();
    showFrame(S.frame);
  }

  function describeTrackPoint() {
    const point = T.points[S.point];
    byId("track-point-panel").hidden = !point;
    if (!point) return;
    const key = T.frames[S.frame];
    const xy = T.rows.points[key.row][point.id];
    byId("track-point-title").textContent = point.name ? "Point " + point.id + ": " + point.name
      : "Point " + point.id;
    const truth = T.truth ? T.truth[key.row][point.id] : null;
    const error = truth && xy ? Math.hypot(xy[0] - truth[0], xy[1] - truth[1]) : null;
    setMeta(byId("track-point-meta"), [
      ["reference", point.query_frame === null ? "none (global search)"
        : "frame " + point.query_frame + " at " + showXY(point.query_xy)],
      ["frame " + key.frame, showXY(xy)],
      ["ground truth", truth ? showXY(truth) : null], ["error", error === null ? null : fixed(error, 1) + " px"],
      ["visible", T.rows.visible[key.row][point.id] ? "yes" : "no"],
      ["confidence", fixed(T.rows.confidence[key.row][point.id], 3)],
      ["heat map", key.heat[point.id] ? "shown" : "not saved for this frame"],
    ]);
  }

  // ------------------------------------------------------------------------------------------- keys
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    // Typing and choosing keep their keys; the slider's are ours (the same moves, plus up/down for points).
    const typing = "input:not([type=range]):not([type=checkbox]), select, textarea";
    if (target instanceof HTMLElement && target.matches(typing)) return;
    const step = { ArrowUp: -1, ArrowDown: 1, ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (step === undefined) return;
    const vertical = event.key === "ArrowUp" || event.key === "ArrowDown";
    if (activeView === "pairs") {
      if (vertical) movePair(step); else movePoint(step);
    } else if (activeView === "tracks") {
      if (vertical) selectTrackPoint(clamp(S.point + step, 0, T.points.length - 1));
      else showFrame(S.frame + step);
    } else {
      return;
    }
    event.preventDefault();
  });

  if (pairs.length) setUpPairs();
  if (T) setUpTracks();
  if (views.length) showView(views[0][0]);
  document.body.dataset.ready = "true";
})();
