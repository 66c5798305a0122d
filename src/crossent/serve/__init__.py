"""The local web playground: move a logit and watch softmax, the loss and the gradient answer.

``crossent serve`` (or :func:`serve`) starts one page, served from this package and
working offline, over a JSON API on the same :class:`~crossent.explain.Trace` model
as ``crossent explain``:

- ``POST /api/explain``: the trace (what ``crossent explain --format json`` prints);
- ``POST /api/gradient``: probabilities, each position's loss, the gradient p − y;
- ``POST /api/compare``: every framework's number and why it differs;
- ``POST /api/numerics``: softmax without the max shift in float16/float32 vs the stable form;
- ``POST /api/plot``: the loss as one logit moves; ``GET /api/plot[/NAME]``: the seeds' curves;
- ``GET /api/examples[/NAME]``: the seeds' worked examples, the seed's numbers beside crossent's;
- ``GET /api/formula?latex=...``: a formula as SVG; ``GET /openapi.json``: the schema.

English and Simplified Chinese (``?lang=zh``). Needs the ``serve`` extra
(``pip install crossent[serve]``: FastAPI and uvicorn); ``import crossent`` does not.

>>> from crossent.serve import create_app          # doctest: +SKIP
>>> app = create_app()                             # an ASGI app, for uvicorn or a test client
"""

from __future__ import annotations

import ipaddress
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app", "serve", "is_loopback"]


def create_app(**options: Any) -> FastAPI:
    """The playground's ASGI app (see :func:`crossent.serve._app.create_app`)."""
    try:
        from ._app import create_app as _create
    except ImportError as error:  # fastapi or uvicorn missing
        raise ImportError(
            f"crossent serve needs FastAPI and uvicorn ({error.name} is missing): "
            "pip install 'crossent[serve]'"
        ) from None
    return _create(**options)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (only this machine can connect).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False,
          log_level: str = "warning") -> None:
    """Run the playground at ``http://host:port/`` until interrupted (Ctrl+C).

    The default host is the loopback address: only this machine can connect. Another
    host (e.g. ``0.0.0.0``) exposes the page to the network; the server says so, and then
    answers any Host header.
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    try:
        import uvicorn
    except ImportError:
        raise ImportError("crossent serve needs uvicorn: pip install 'crossent[serve]'") from None
    local = is_loopback(host)
    if not local:
        print(f"warning: serving on {host}, not a loopback address: other machines can reach "
              "this page and its API", file=sys.stderr)
    app = create_app(allowed_hosts=None if local else ["*"])
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if open_browser:
        import threading
        import webbrowser

        def opener() -> None:  # once the server listens
            import time

            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=opener, daemon=True).start()
    print(f"crossent playground: {url} (Ctrl+C stops it)", file=sys.stderr)
    server.run()
