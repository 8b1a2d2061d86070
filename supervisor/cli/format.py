"""Human-facing formatting, byte-for-byte like the docker CLI's (go-units, tabwriter).

Scripts parse `docker ps`/`docker images` output; matching its spacing, truncation and
unit rules lets them work unchanged against corral.
"""

from __future__ import annotations

from collections.abc import Sequence

from supervisor.units import human_duration

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, units: Sequence[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 3) -> str:
    """go-units `HumanSizeWithPrecision`: decimal units, `%.3g` — `1.23MB`, `128kB`, `0B`."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units `BytesSize`: binary units, `%.4g` — `7.764GiB` (used by `info`)."""
    value, unit = _scaled(float(size), 1024.0, _BINARY)
    return f"{value:.4g}{unit}"


def ago(created: float, now: float) -> str:
    """CREATED column: `human_duration(now - created) + " ago"`."""
    return human_duration(now - created) + " ago"


def short_id(ident: str) -> str:
    """docker's TruncateID: drop an algorithm prefix (`sha256:`), keep 12 hex digits."""
    _, _, hexpart = ident.rpartition(":")
    return hexpart[:12]


def ellipsis(text: str, width: int) -> str:
    """Cut to `width` characters, the last being `…` (docker's formatter.Ellipsis)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "…"


def table(rows: Sequence[Sequence[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Align like Go's tabwriter(minwidth=10, tabwidth=1, padding=3) as docker uses it.

    Every column but the last is padded to max(minwidth, widest cell + padding); the last
    is left as is, so lines carry no trailing spaces.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        parts = [
            cell.ljust(max(minwidth, widths[i] + padding)) if i < len(row) - 1 else cell
            for i, cell in enumerate(row)
        ]
        lines.append("".join(parts))
    return "\n".join(lines) + "\n"


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the COMMAND column: double quotes, backslash escapes."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ports(entries: Sequence[dict[str, object]] | None) -> str:
    """PORTS column: `0.0.0.0:8080->80/tcp, 443/tcp` from the API's `Ports` list."""
    shown: list[tuple[int, str]] = []
    for p in entries or []:
        private = p.get("PrivatePort")
        proto = p.get("Type") or "tcp"
        public = p.get("PublicPort")
        if public:
            ip = p.get("IP") or "0.0.0.0"
            host = f"[{ip}]" if ":" in str(ip) else str(ip)
            text = f"{host}:{public}->{private}/{proto}"
        else:
            text = f"{private}/{proto}"
        key = private if isinstance(private, int) else 0
        if text not in (t for _, t in shown):
            shown.append((key, text))
    shown.sort(key=lambda kt: kt[0])
    return ", ".join(t for _, t in shown)


def names(raw: Sequence[str] | None) -> str:
    """NAMES column: leading `/` dropped; link aliases (`/a/b`) hidden like docker."""
    out = []
    for name in raw or []:
        stripped = name[1:] if name.startswith("/") else name
        if "/" not in stripped:
            out.append(stripped)
    return ",".join(out)


def repo_tag(ref: str) -> tuple[str, str]:
    """Split `repo[:tag]` at the last colon after the last slash (so `host:5000/x` works)."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, ""


def normalize_ref(ref: str) -> str:
    """`busybox` → `busybox:latest` (for messages); digests and tags are left alone."""
    if "@" in ref:
        return ref
    _, tag = repo_tag(ref)
    return ref if tag else ref + ":latest"
