"""Server-rendered pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from neonrain.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request) -> Response:
    return templates.TemplateResponse(request, "landing.html", {"title": "Neonrain"})


def not_found_page(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "not_found.html", {"title": "Not found"}, status_code=404
    )
