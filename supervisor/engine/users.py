"""`-u user[:group]` resolved against the container's own /etc/passwd and /etc/group.

Read through `secure_join`, so a symlinked /etc/passwd in an image can not make the
daemon read a host file.  Errors use Docker's wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from supervisor.engine.paths import secure_join
from supervisor.errors import CorralError


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    home: str = "/"
    additional_gids: list[int] = field(default_factory=list)


def _read_db(root: Path, path: str) -> list[list[str]]:
    try:
        text = secure_join(root, path).read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(root: Path, spec: str) -> ResolvedUser:
    """uid/gid/home and supplementary groups for `spec` (`name`, `uid`, `a:b`)."""
    user, _, group = (spec or "root").partition(":")
    passwd = _read_db(root, "/etc/passwd")
    groups = _read_db(root, "/etc/group")
    entry = next((e for e in passwd if len(e) >= 4 and (e[0] == user or e[2] == user)), None)
    if entry is not None:
        uid, gid, home, name = (
            int(entry[2]),
            int(entry[3]),
            entry[5] if len(entry) > 5 else "/",
            entry[0],
        )
    elif user.isdigit():
        uid, gid, home, name = int(user), 0, "/", ""
    else:
        raise CorralError(f"unable to find user {user}: no matching entries in passwd file")
    if group:
        gentry = next((g for g in groups if len(g) >= 3 and (g[0] == group or g[2] == group)), None)
        if gentry is not None:
            gid = int(gentry[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise CorralError(f"unable to find group {group}: no matching entries in group file")
    extra = sorted(
        {int(g[2]) for g in groups if len(g) >= 4 and name and name in g[3].split(",")} - {gid}
    )
    return ResolvedUser(uid=uid, gid=gid, home=home or "/", additional_gids=extra)
