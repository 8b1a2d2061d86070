"""`docker search`: the registry's v1 search API (Docker Hub's `index.docker.io`).

A term whose first component is a registry (`127.0.0.1:5000/busy`) searches that
registry; anything else Docker Hub.  A registry without the API (distribution has none)
answers Docker's `Unexpected status code 404`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from supervisor.distribution.reference import endpoint
from supervisor.distribution.registry import RegistryError
from supervisor.distribution.transport import HttpClient, TransportError
from supervisor.errors import InvalidArgument

HUB_INDEX = "index.docker.io"
_LIMIT = 8 << 20


@dataclass(frozen=True)
class SearchResult:
    name: str
    description: str
    star_count: int
    is_official: bool
    is_automated: bool


def split_term(term: str) -> tuple[str, str]:
    """(index domain, query): Docker's rule for where a name's registry is."""
    first, sep, rest = term.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost"):
        return first, rest
    return "docker.io", term


async def search(http: HttpClient, term: str, limit: int,
                 insecure: frozenset[str] = frozenset()) -> list[SearchResult]:
    if not term:
        raise InvalidArgument("search term is required")
    if not 1 <= limit <= 100:
        raise InvalidArgument("limit must be between 1 and 100")
    domain, query = split_term(term)
    ep = endpoint(HUB_INDEX if domain == "docker.io" else domain, insecure)
    tail = "/v1/search?" + urlencode({"q": query, "n": str(limit)})
    try:
        doc = await _get(http, ep.origin + tail, not ep.insecure)
    except TransportError:
        if not (ep.insecure and ep.scheme == "https"):
            raise
        doc = await _get(http, ep.plain().origin + tail, False)
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        raise RegistryError("invalid search response: no results")
    out = []
    for r in results[:limit]:
        if isinstance(r, dict):
            out.append(SearchResult(str(r.get("name", "")), str(r.get("description") or ""),
                                    int(r.get("star_count") or 0), bool(r.get("is_official")),
                                    bool(r.get("is_automated"))))
    return out


async def _get(http: HttpClient, url: str, verify: bool) -> Any:
    async with http.request("GET", url, verify=verify) as resp:
        body = await resp.read(_LIMIT)
        if resp.status != 200:
            raise RegistryError(f"Unexpected status code {resp.status}")
    try:
        return json.loads(body)
    except ValueError:
        raise RegistryError("invalid search response: not JSON") from None


def apply_filters(results: list[SearchResult], filters: dict[str, list[str]]
                  ) -> list[SearchResult]:
    """Docker's search filters: `is-official=true|false`, `stars=N`; others refused
    (`is-automated` is deprecated, accepted as Docker does)."""
    for key in filters:
        if key not in ("is-official", "stars", "is-automated"):
            raise InvalidArgument(f"invalid filter '{key}'")
    out = results
    for v in filters.get("is-official", []):
        if v not in ("true", "false"):
            raise InvalidArgument(f"invalid filter 'is-official={v}'")
        out = [r for r in out if r.is_official == (v == "true")]
    for v in filters.get("is-automated", []):
        if v not in ("true", "false"):
            raise InvalidArgument(f"invalid filter 'is-automated={v}'")
        out = [r for r in out if r.is_automated == (v == "true")]
    for v in filters.get("stars", []):
        if not v.isdigit():
            raise InvalidArgument(f"invalid filter 'stars={v}'")
        out = [r for r in out if r.star_count >= int(v)]
    return out
