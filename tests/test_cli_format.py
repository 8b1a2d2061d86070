"""Sizes, durations, tables and listing rows, byte-for-byte like the docker CLI."""

from __future__ import annotations

import pytest

from supervisor.cli import format as fmt
from supervisor.cli.containers import ps_row, start_error_code
from supervisor.cli.images import image_rows


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (1234567, "1.23MB"), (4_260_000, "4.26MB"),
     (128_000, "128kB"), (999_999, "1e+03kB"), (5 * 10**9, "5GB")],
)
def test_human_size(size: int, text: str) -> None:
    assert fmt.human_size(size) == text


def test_bytes_size() -> None:
    assert fmt.bytes_size(8_336_506_880) == "7.764GiB"
    assert fmt.bytes_size(512) == "512B"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
     (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
     (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
     (48 * 3600, "2 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
     (2 * 365 * 86400, "2 years")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert fmt.human_duration(seconds) == text


def test_table_alignment_like_tabwriter() -> None:
    out = fmt.table([["CONTAINER ID", "IMAGE", "NAMES"], ["abc", "busybox:latest", "x"]])
    assert out == (
        "CONTAINER ID   IMAGE            NAMES\n"
        "abc            busybox:latest   x\n"
    )
    assert fmt.table([["A", "B"], ["1", "2"]]) == "A         B\n1         2\n"


def test_small_helpers() -> None:
    assert fmt.short_id("sha256:0123456789abcdef") == "0123456789ab"
    assert fmt.ellipsis("a" * 30, 20) == "a" * 19 + "…"
    assert fmt.go_quote('sh -c "x"\n') == '"sh -c \\"x\\"\\n"'
    assert fmt.names(["/web", "/other/alias"]) == "web"
    assert fmt.repo_tag("localhost:5000/x") == ("localhost:5000/x", "")
    assert fmt.repo_tag("x:1.0") == ("x", "1.0")
    assert fmt.normalize_ref("busybox") == "busybox:latest"
    assert fmt.ports([{"PrivatePort": 443, "Type": "tcp"},
                      {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]) \
        == "0.0.0.0:8080->80/tcp, 443/tcp"


def test_ps_row() -> None:
    c = {"Id": "f" * 64, "Names": ["/web"], "Image": "busybox",
         "Command": "sh -c 'while true; do sleep 1; done'", "Created": 1000,
         "Status": "Up 2 minutes", "State": "running", "Ports": [], "Labels": {"a": "b"}}
    row = ps_row(c, now=1000 + 150, trunc=True)
    assert row["ID"] == "f" * 12
    assert row["Command"] == '"sh -c \'while true; …"'
    assert row["RunningFor"] == "2 minutes ago"
    assert row["Status"] == "Up 2 minutes"
    assert row["Names"] == "web"
    assert row["Labels"] == "a=b"
    assert ps_row(c, now=1000, trunc=False)["ID"] == "f" * 64


def test_image_rows_one_per_tag_and_none() -> None:
    images = [
        {"Id": "sha256:" + "a" * 64, "RepoTags": ["busybox:latest", "bb:1"], "Created": 100,
         "Size": 1_980_000},
        {"Id": "sha256:" + "b" * 64, "RepoTags": [], "Created": 200, "Size": 0},
    ]
    rows = image_rows(images, now=260, trunc=True)
    assert [(r["Repository"], r["Tag"], r["ID"]) for r in rows] == [
        ("<none>", "<none>", "b" * 12),
        ("busybox", "latest", "a" * 12),
        ("bb", "1", "a" * 12),
    ]
    assert rows[1]["Size"] == "1.98MB"
    assert rows[1]["CreatedSince"] == "2 minutes ago"
    assert image_rows(images, 260, trunc=False)[0]["ID"] == "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("message", "code"),
    [('exec: "nope": executable file not found in $PATH', 127),
     ("open /bin/x: no such file or directory", 127),
     ('exec: "/etc/passwd": permission denied', 126),
     ("something else", 125)],
)
def test_start_error_codes(message: str, code: int) -> None:
    assert start_error_code(message) == code
