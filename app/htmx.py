"""One helper decides between a full page and an htmx fragment."""

from urllib.parse import urlsplit

from flask import Response, make_response, redirect, render_template, request


def is_htmx_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_fragment() -> bool:
    """An htmx request that swaps part of a page.

    Boosted navigation and history restores replace the whole body, so they get
    the full page.
    """
    return (
        is_htmx_request()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    page: str, fragment: str | None = None, *, http_status: int = 200, **context
) -> Response:
    """Render ``fragment`` for htmx fragment requests and ``page`` (which includes it) otherwise."""
    template = fragment if (fragment and wants_fragment()) else page
    response = make_response(render_template(template, **context), http_status)
    response.vary.add("HX-Request")
    return response


def redirect_to(location: str) -> Response:
    """Redirect that htmx follows as a full navigation."""
    if is_htmx_request():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location)


def navigate_after_redirect(response: Response) -> Response:
    """A plain redirect answering an htmx request becomes HX-Redirect.

    The browser's XMLHttpRequest follows a 302 silently, so a boosted form post (sign
    in, sign up) would show the next page while the address bar kept the posted URL.
    HX-Redirect makes htmx load the page itself, so the address bar names it.
    """
    if is_htmx_request() and response.status_code in {301, 302, 303, 307, 308}:
        location = response.headers["Location"]
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
    return response


def add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response


def local_path_or(default: str, target: str | None) -> str:
    """``target`` when it is a path on this site (never another host), else ``default``."""
    target = target or ""
    is_local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    if is_local and not urlsplit(target).netloc:
        return target
    return default
