"""`-u user[:group]` resolved against the container's own /etc/passwd and /etc/group.

Docker's rules (runc's `GetExecUser`, which Docker calls): no user means uid 0,
taking root's entry if the passwd file has one; a number is always a uid and needs no
entry (gid 0 then, unless a group is given); only a *name* must be found.  So an image
with no /etc/passwd at all (`FROM scratch`, distroless, a static binary) runs as 0:0,
and `-u 1000` or `-u 1000:1000` run as given.  Supplementary groups come from
/etc/group only for a user found by name or uid without an explicit group.

Read through `secure_join`, so a symlinked /etc/passwd in an image can not make the
daemon read a host file.  Errors use Docker's wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from supervisor.engine.paths import secure_join
from supervisor.errors import CorralError

#: runc's limit for uids and gids (`minID`/`maxID`).
MAX_ID = 2**31 - 1


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    home: str = "/"
    additional_gids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _lines(root: Path, path: str) -> list[list[str]]:
    """The file's records split on `:`; a missing or unreadable file has none."""
    try:
        text = secure_join(root, path).read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def parse_passwd(records: list[list[str]]) -> list[PasswdEntry]:
    """Entries with a numeric uid and gid; malformed lines are skipped, as runc does."""
    entries = []
    for r in records:
        if len(r) < 4 or not _is_id(r[2]) or not _is_id(r[3]):
            continue
        entries.append(PasswdEntry(r[0], int(r[2]), int(r[3]), r[5] if len(r) > 5 else ""))
    return entries


def parse_group(records: list[list[str]]) -> list[GroupEntry]:
    entries = []
    for r in records:
        if len(r) < 3 or not _is_id(r[2]):
            continue
        members = tuple(m for m in r[3].split(",") if m) if len(r) > 3 else ()
        entries.append(GroupEntry(r[0], int(r[2]), members))
    return entries


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _numeric(text: str, what: str) -> int:
    value = int(text)
    if value > MAX_ID:
        raise CorralError(f"{what} must be in range 0-{MAX_ID}: {text}")
    return value


def resolve(
    spec: str,
    passwd: list[PasswdEntry],
    groups: list[GroupEntry],
    group_add: list[str] | None = None,
) -> ResolvedUser:
    """uid/gid/home and supplementary groups for `spec` (``""``, `name`, `uid`, `a:b`),
    plus `--group-add` (`HostConfig.GroupAdd`): names found in the group file, numbers
    taken as they are, as runc's GetAdditionalGroups."""
    user, _, group = (spec or "").partition(":")
    if user == "":
        entry = next((e for e in passwd if e.uid == 0), None)
    elif _is_id(user):
        entry = next((e for e in passwd if e.uid == int(user)), None)
    else:
        entry = next((e for e in passwd if e.name == user), None)
    if entry is not None:
        resolved = ResolvedUser(uid=entry.uid, gid=entry.gid, home=entry.home or "/")
    elif user == "":
        resolved = ResolvedUser(uid=0, gid=0)
    elif _is_id(user):
        resolved = ResolvedUser(uid=_numeric(user, "uids and gids"), gid=0)
    else:
        raise CorralError(f"unable to find user {user}: no matching entries in passwd file")
    if group:
        if _is_id(group):
            found = next((g for g in groups if g.gid == int(group)), None)
        else:
            found = next((g for g in groups if g.name == group), None)
        if found is not None:
            resolved.gid = found.gid
        elif _is_id(group):
            resolved.gid = _numeric(group, "uids and gids")
        else:
            raise CorralError(f"unable to find group {group}: no matching entries in group file")
    elif entry is not None:
        resolved.additional_gids = sorted(
            {g.gid for g in groups if entry.name in g.members} - {resolved.gid}
        )
    if group_add:
        extra = set(resolved.additional_gids)
        for name in group_add:
            found = next((g for g in groups if g.name == name), None)
            if found is not None:
                extra.add(found.gid)
            elif _is_id(name):
                extra.add(_numeric(name, "uids and gids"))
            else:
                raise CorralError(
                    f"Unable to find group {name}: no matching entries in group file"
                )
        resolved.additional_gids = sorted(extra)
    return resolved


def resolve_user(root: Path, spec: str, group_add: list[str] | None = None) -> ResolvedUser:
    """`resolve` against the /etc/passwd and /etc/group inside `root` (either may lack)."""
    passwd = parse_passwd(_lines(root, "/etc/passwd"))
    groups = parse_group(_lines(root, "/etc/group"))
    return resolve(spec, passwd, groups, group_add)


def chown_ids(spec: str, passwd: list[PasswdEntry], groups: list[GroupEntry]) -> tuple[int, int]:
    """COPY/ADD `--chown=user[:group]` as Docker's classic builder reads it (moby's
    `parseChownFlag`), which is not `-u`: a user given alone names the group too
    (`1000` is 1000:1000, `app` is app's uid and the gid of the *group* app); a number
    is taken as is, a name must be in the image's /etc/passwd or /etc/group."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise CorralError(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    prefix = "unable to convert uid/gid chown string to host mapping: "
    if _is_id(user):
        uid = _numeric(user, "uids and gids")
    else:
        found_user = next((e for e in passwd if e.name == user), None)
        if found_user is None:
            raise CorralError(f"{prefix}can't find uid for user {user}: no such user: {user}")
        uid = found_user.uid
    if _is_id(group):
        gid = _numeric(group, "uids and gids")
    else:
        found_group = next((g for g in groups if g.name == group), None)
        if found_group is None:
            raise CorralError(f"{prefix}can't find gid for group {group}: no such group: {group}")
        gid = found_group.gid
    return uid, gid


def resolve_chown(root: Path, spec: str) -> tuple[int, int]:
    """`chown_ids` against the /etc/passwd and /etc/group inside `root`."""
    passwd = parse_passwd(_lines(root, "/etc/passwd"))
    return chown_ids(spec, passwd, parse_group(_lines(root, "/etc/group")))
