"""Human-facing formatting, byte-for-byte like the docker CLI's (go-units, tabwriter).

Scripts parse `docker ps`/`docker images` output; matching its spacing, truncation and
unit rules lets them work unchanged against corral.
"""

from __future__ import annotations

from supervisor.units import human_duration

TYPE_CHECKING = False  # the `collections` package costs ~2 ms of every command
if TYPE_CHECKING:
    from collections.abc import Sequence

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


def go_time(stamp: str) -> str:
    """Go's time.Time.String() of an RFC 3339 stamp: `2024-05-01 10:11:12.5 +0000 UTC`."""
    date, sep, rest = stamp.partition("T")
    if not sep or len(rest) < 8:
        return stamp
    clock, zone = rest[:8], rest[8:]
    frac = ""
    if zone.startswith("."):
        digits = zone[1:]
        end = len(digits) - len(digits.lstrip("0123456789"))
        frac, zone = digits[:end].rstrip("0"), digits[end:]
    if zone in ("Z", "z", ""):
        offset = "+0000 UTC"
    else:
        offset = zone.replace(":", "")
        offset = f"{offset} {offset}"
    return f"{date} {clock}{'.' + frac if frac else ''} {offset}"


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
    """Rows of cells aligned as docker's tabwriter aligns them (see `tabwrite`)."""
    if not rows:
        return ""
    return tabwrite("".join("\t".join(row) + "\n" for row in rows), minwidth, padding)


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as docker sets it up (minwidth 10, tabwidth 1, padding 3, ' ').

    A cell is text ended by a tab; a line's last cell is not aligned. A column is
    aligned over each run of consecutive lines that have a cell in it: as wide as its
    widest cell plus `padding`, at least `minwidth`. So lines without tabs (a `table`
    template's odd line) break the alignment exactly where Go's would.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            for j, cell in enumerate(cells):
                out.append(cell.ljust(widths[j]) if j < len(widths) else cell)
            if i + 1 < len(lines):
                out.append("\n")

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write(line0, line1)

    fmt(0, len(lines))
    return "".join(out)


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
