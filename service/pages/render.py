"""Templates and the few helpers they use: Chinese names, percentages, times, and evidence highlighted
in a customer's text. Autoescape is on for every template: customer words are untrusted."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from cxnlp.ledger.register import STATUS_ZH
from cxnlp.ledger.timezone import show, to_local
from cxnlp.taxonomy import CATEGORY_NAMES_ZH, SENTIMENT_NAMES_ZH

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Defence in depth behind escaping: the pages run only this site's scripts (none inline) and load
# nothing from elsewhere; no other site may frame them.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NAV = (("/", "总览"), ("/ledger", "台账"), ("/review", "复核"), ("/followups", "回访"), ("/surveys", "问卷"),
       ("/model", "模型"))


def zh_category(label: str) -> str:
    return CATEGORY_NAMES_ZH.get(label, label)


def zh_sentiment(label: str | None) -> str:
    return SENTIMENT_NAMES_ZH.get(label or "", label or "")


def zh_status(label: str) -> str:
    return STATUS_ZH.get(label, label)


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time in the configured zone (``CXNLP_TIMEZONE``), with the zone's name."""
    local = to_local(value)
    return "—" if local is None else local.strftime("%Y-%m-%d %H:%M %Z")


def plain(value: Any) -> str:
    """An audit value as text (JSON with Chinese kept readable); autoescape escapes it like any text."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def minute(value: datetime | None) -> str:
    """A stored time in the lists, in the configured zone; — when there is none."""
    return show(value) or "—"


def query(params: dict[str, Any], **changes: Any) -> str:
    """A query string of ``params`` with ``changes`` applied (empty values dropped)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


def highlight(text: str, evidence: dict[str, list[dict[str, Any]]]) -> Markup:
    """The text with each evidence span wrapped in ``<mark>``, built from escaped pieces: the customer's
    words are escaped piece by piece and only our own tags are markup. Spans outside the text or
    overlapping an earlier one are left out rather than trusted."""
    spans = []
    for label, items in (evidence or {}).items():
        for e in items or []:
            start, end = e.get("start"), e.get("end")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
                spans.append((start, end, str(label)))
    out, pos = [], 0
    for start, end, label in sorted(spans):
        if start < pos:
            continue
        out.append(escape(text[pos:start]))
        out.append(Markup('<mark class="ev" data-label="{}" title="{}">{}</mark>').format(
            label, zh_category(label), text[start:end]))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(zh_category=zh_category, zh_sentiment=zh_sentiment, zh_status=zh_status, pct=pct, plain=plain, minute=minute,
                       when=when)
    env.globals.update(query=query, NAV=NAV)
    return env


templates = Jinja2Templates(env=_environment())


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Any:
    """Render a page with what every page needs: the CSRF token, who is signed in, the navigation."""
    from service.pages.auth import csrf_token, current_actor, login_required

    base = {"csrf": csrf_token(request), "actor": current_actor(request),
            "key_required": login_required(request), "path": request.url.path}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code,
                                      headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                               "Referrer-Policy": "same-origin", "Cache-Control": "no-store"})
