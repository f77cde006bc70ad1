"""Response headers every page carries: CSP with a per-request nonce and friends."""

import secrets

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

# The only files the pages load from the CDN (each with SRI and a local fallback):
# the policy names them, not the whole host, which serves anybody's package.
CDN_SCRIPTS = {
    "htmx": "https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js",
    "sortable": "https://cdn.jsdelivr.net/npm/sortablejs@1.15.6/Sortable.min.js",
}


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _set_security_headers(response):
    nonce = g.get("csp_nonce")
    script_src = " ".join(["'self'", *CDN_SCRIPTS.values()])
    script_src += f" 'nonce-{nonce}'" if nonce else ""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; "
        f"script-src {script_src}; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if not g.get("frameable"):
        response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:  # over HTTPS (directly or through a trusted proxy): stay on it
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def register_security_headers(app: Flask) -> None:
    app.after_request(_set_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["cdn_scripts"] = CDN_SCRIPTS


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, take the visitor's address and scheme
    from their X-Forwarded-For/-Proto (and from nobody else's)."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
