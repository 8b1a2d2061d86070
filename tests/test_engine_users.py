"""`-u` resolution as Docker does it (runc's GetExecUser), on passwd/group data alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.engine.users import ResolvedUser, parse_group, parse_passwd, resolve, resolve_user
from supervisor.errors import CorralError

PASSWD = parse_passwd(
    [
        line.split(":")
        for line in (
            "root:x:0:0:root:/root:/bin/sh",
            "app:x:1000:1000::/home/app:/bin/sh",
            "broken:x:notanumber:0::/:/bin/sh",
            "nohome:x:1001:50",
        )
    ]
)
GROUP = parse_group(
    [
        line.split(":")
        for line in ("root:x:0:", "staff:x:50:app,other", "app:x:1000:", "web:x:33:app")
    ]
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ResolvedUser(0, 0, "/root")),
        ("root", ResolvedUser(0, 0, "/root")),
        ("app", ResolvedUser(1000, 1000, "/home/app", [33, 50])),
        ("1000", ResolvedUser(1000, 1000, "/home/app", [33, 50])),
        ("app:staff", ResolvedUser(1000, 50, "/home/app")),  # explicit group: no extras
        ("app:7", ResolvedUser(1000, 7, "/home/app")),
        ("4242", ResolvedUser(4242, 0)),
        ("4242:4242", ResolvedUser(4242, 4242)),
        (":50", ResolvedUser(0, 50, "/root")),
        ("nohome", ResolvedUser(1001, 50, "/")),
    ],
)
def test_resolve(spec: str, expected: ResolvedUser) -> None:
    assert resolve(spec, PASSWD, GROUP) == expected


def test_no_passwd_or_group_at_all() -> None:
    assert resolve("", [], []) == ResolvedUser(0, 0)
    assert resolve("1000", [], []) == ResolvedUser(1000, 0)
    assert resolve("1000:1000", [], []) == ResolvedUser(1000, 1000)
    with pytest.raises(CorralError, match="^unable to find user root: no matching entries"):
        resolve("root", [], [])
    with pytest.raises(CorralError, match="^unable to find group wheel: no matching entries"):
        resolve("0:wheel", [], [])


def test_names_must_exist_and_ids_fit() -> None:
    with pytest.raises(CorralError, match="unable to find user broken:"):
        resolve("broken", PASSWD, GROUP)  # its line is malformed: skipped, as runc does
    with pytest.raises(CorralError, match="0-2147483647"):
        resolve("2147483648", PASSWD, GROUP)


def test_files_are_read_inside_the_root(tmp_path: Path) -> None:
    host = tmp_path / "host-passwd"
    host.write_text("root:x:0:0::/from-the-host:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to(host)  # absolute: means root/<host path>
    assert resolve_user(root, "") == ResolvedUser(0, 0)
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    assert resolve_user(root, "") == ResolvedUser(0, 0, "/root")
