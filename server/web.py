"""Serving the built web client (web_client/dist) from the same origin as the API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

# Paths the browser app routes itself; each gets index.html. The app reads the rest of the
# location (and the join token in the fragment, which never reaches the server) on its own.
APP_PAGES = (
    "/",
    "/login",
    "/home",
    "/join",
    "/visit/{tail:.*}",
    "/patients/{tail:.*}",
    "/device-check",
    "/admin",
    "/admin/curbside",
    "/curbside",
    "/curbside/{tail:.*}",
    "/clinics",
    "/clinics/{tail:.*}",
    "/registry",
    "/registry/{tail:.*}",
    "/settings/security",
)

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Liaison</title>
<body><main><h1>Liaison</h1><p>The web client has not been built yet. Run
<code>make web</code> (or <code>make demo</code>) in the Liaison folder, then reload.</p></main>
</body></html>"""


def add_web_client_routes(app: web.Application, dist: Path) -> None:
    index = dist / "index.html"

    async def page(request: web.Request) -> web.StreamResponse:
        if not index.is_file():
            return web.Response(text=NOT_BUILT, content_type="text/html", status=503)
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    assets = (dist / "assets").resolve()

    async def asset(request: web.Request) -> web.StreamResponse:
        # Looked up per request, so a client built after the server started is served too.
        path = (assets / request.match_info["name"]).resolve()
        if not path.is_relative_to(assets) or not path.is_file():
            raise web.HTTPNotFound()
        # index.html links assets with ?v=<content hash>: such a URL never changes content.
        cache = "public, max-age=31536000, immutable" if "v" in request.query else "no-cache"
        return web.FileResponse(path, headers={"Cache-Control": cache})

    for path in APP_PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/assets/{name:[A-Za-z0-9._-]+}", asset)
