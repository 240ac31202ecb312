"""`vidcorr view DIR`: write DIR/index.html over what eval, match and track wrote, and open it."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from vidcorr.errors import InputError

from .common import console, handle_errors

DEFAULT_PORT = 8000


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder without a log line per request (the terminal shows the URL and nothing else)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


ServeOpt = Annotated[bool, typer.Option(
    "--serve", help="Serve the page's folder on 127.0.0.1 until Ctrl-C instead of opening the file.")]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port for --serve; 0 picks a free one.")]
NoOpenOpt = Annotated[bool, typer.Option("--no-open", help="Write the page (and serve) without opening a browser.")]


@handle_errors
def view(
    directory: Annotated[Path, typer.Argument(
        help="An eval/match/track output folder (or its vis/ or keyframes/ folder).")],
    serve: ServeOpt = False,
    port: PortOpt = DEFAULT_PORT,
    no_open: NoOpenOpt = False,
) -> None:
    """Write DIRECTORY/index.html: the pairs of `eval --visualize` / `match --visualize` (lines, PCK, attention
    maps per layer) and the key frames of `track` (tracks, heat maps). It needs no server and no network."""
    from vidcorr.web.view import build_site

    page = build_site(directory)
    console.print(f"wrote {page}", soft_wrap=True)
    show_page(page, directory.resolve(), serve=serve, port=port, open_browser=not no_open)


def show_page(page: Path, folder: Path, *, serve: bool, port: int, open_browser: bool) -> None:
    """Open the written `page` in a browser, or with `serve` serve `folder` on 127.0.0.1:`port` (0: a free one)
    until Ctrl-C and open the page's address."""
    if not serve:
        uri = page.resolve().as_uri()
        if open_browser and not webbrowser.open(uri):
            console.print(f"no browser found here: open {uri} in one", soft_wrap=True)
        return
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise InputError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}; try another --port") from None
    with server:
        url = f"http://127.0.0.1:{server.server_address[1]}/{page.resolve().relative_to(folder).as_posix()}"
        console.print(f"serving {folder} at {url} (Ctrl-C to stop)", soft_wrap=True)
        if open_browser and not webbrowser.open(url):
            console.print("no browser found here: open that address in one")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped")
