// The helpers every vidcorr page's script uses (view, pick, review), as VC.*: vidcorr.web.pages.fill_page inlines
// this file before the page's own script, in the same script element, so that the pages share one copy.
/* exported VC */
const VC = (function () {
  "use strict";
  const SVG_NS = "http://www.w3.org/2000/svg";

  // The page's data: the JSON block written by vidcorr.web.pages.embed_json.
  function data() {
    return JSON.parse(document.getElementById("vidcorr-data").textContent);
  }

  // Every node that shows data is built here: text goes in through textContent only.
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgNode(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  const round2 = (v) => Math.round(v * 100) / 100;
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  // The video pixel under a pointer, clamped to the frame, to 0.01 px: the overlay's viewBox is "0 0 W H" over
  // the picture, so a pointer at fraction f of the overlay's width is at x = f * W (pixel centres at +0.5).
  function toVideo(svg, event, W, H) {
    const box = svg.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * W;
    const y = ((event.clientY - box.top) / box.height) * H;
    return { x: round2(Math.min(W, Math.max(0, x))), y: round2(Math.min(H, Math.max(0, y))) };
  }

  // The picture fills `column` CSS pixels of width, up to `heightShare` of the window's height, whatever the
  // embedded picture's own size: small videos are enlarged, large ones shrunk.
  function fitPicture(image, column, W, H, heightShare) {
    const scale = Math.max(0.05, Math.min(column / W, (window.innerHeight * heightShare) / H));
    image.style.width = Math.floor(W * scale) + "px";
    image.style.height = Math.floor(H * scale) + "px";
  }

  // Save `text` as a download named `name`.
  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type || "application/json" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // A command as one unbreakable span per shell word, so that its box wraps between words only, never inside
  // a path or a point list (browsers break after "/" and "-"); the box's text is the command's.
  function showCommand(box, command) {
    while (box.firstChild) box.removeChild(box.firstChild);
    const words = command.match(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g) || [];
    words.forEach((word, k) => {
      if (k) box.appendChild(document.createTextNode(" "));
      box.appendChild(el("span", { class: "word" }, word));
    });
  }

  return { data, el, svgNode, round2, plural, toVideo, fitPicture, download, showCommand };
})();
