"""The build context: a directory of files COPY and ADD may read, minus `.dockerignore`.

`.dockerignore` follows moby's `patternmatcher`: one pattern per line, `#` comments,
patterns cleaned and made relative; `*` and `?` stay within one path component, `**`
crosses any number of them; a later `!pattern` re-includes what an earlier pattern
excluded, and a pattern that matches a directory excludes everything under it.  The
matcher is pure (`IgnoreMatcher`); `BuildContext` applies it to a directory on disk and
refuses any source that would leave the context (`../x`, or through a symlink that
points outside), naming it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import InvalidArgument

_SPECIAL = set(".+()|{}$^")


def _compile(pattern: str) -> re.Pattern[str]:
    """moby's patternmatcher regexp for one (cleaned) pattern."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                out += ".*" if i + 1 == n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in _SPECIAL:
            out += "\\" + ch
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out += re.escape(pattern[i])
            else:
                out += "\\\\"
        else:
            out += ch
        i += 1
    return re.compile(out + "$")


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def clean_pattern(p: str) -> str:
    p = posixpath.normpath(p.strip())
    p = p.lstrip("/") or "."
    return p


class IgnoreMatcher:
    """`.dockerignore` patterns; `matches(path)` says whether a context path is ignored."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            if not line:
                raise InvalidArgument('.dockerignore: illegal exclusion pattern: "!"')
            text = clean_pattern(line)
            self.patterns.append(_Pattern(text, exclusion, _compile(text)))

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls(text.splitlines())

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """moby's MatchesOrParentMatches: the last matching pattern decides."""
        path = clean_pattern(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            hit = bool(p.regex.match(path))
            if not hit and parents:
                for i in range(len(parents)):
                    if p.regex.match("/".join(parents[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not p.exclusion
        return matched


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def outside(rel: str) -> bool:
    """Whether a cleaned relative path climbs out of its root."""
    return rel == ".." or rel.startswith("../")


class BuildContext:
    """A context directory on disk with its ignore rules."""

    def __init__(self, root: Path, ignore: IgnoreMatcher | None = None) -> None:
        self.root = root
        self.ignore = ignore or IgnoreMatcher([])

    @classmethod
    def open(cls, root: Path) -> BuildContext:
        f = root / ".dockerignore"
        text = f.read_text(errors="replace") if f.is_file() and not f.is_symlink() else ""
        return cls(root, IgnoreMatcher.from_text(text))

    def ignored(self, rel: str) -> bool:
        return rel not in ("", ".") and self.ignore.matches(rel)

    def resolve(self, rel: str, shown: str) -> Path:
        """`root/rel` with symlinks followed but never outside the root (else refused)."""
        parts = [p for p in rel.split("/") if p and p != "."]
        cur = self.root
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if cur == self.root:
                    raise InvalidArgument(f"forbidden path outside the build context: {shown}")
                cur = cur.parent
                continue
            nxt = cur / part
            if nxt.is_symlink():
                hops += 1
                if hops > 40:
                    raise InvalidArgument(f"too many levels of symbolic links: {shown}")
                target = os.readlink(nxt)
                joined = posixpath.normpath(posixpath.join(str(cur.relative_to(self.root)), target))
                # An absolute target names a host path to the user who made it; Docker
                # would quietly look it up inside the context instead: refuse it.
                if target.startswith("/") or outside(joined):
                    raise InvalidArgument(
                        f"forbidden path outside the build context: {shown} "
                        f"(symlink {nxt.relative_to(self.root)} -> {target})"
                    )
                cur = self.root
                parts = [p for p in joined.split("/") if p and p != "."] + parts
                continue
            cur = nxt
        return cur

    def sources(self, src: str) -> list[str]:
        """Context-relative paths a COPY/ADD source names (globs expanded).

        Raises InvalidArgument naming `src` when it leaves the context or matches
        nothing (an ignored file counts as absent, as in Docker).
        """
        rel = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
        if outside(rel):
            raise InvalidArgument(f"forbidden path outside the build context: {src}")
        if not has_glob(rel):
            path = self.resolve(rel, src)
            if not os.path.lexists(path) or self.ignored(rel):
                raise InvalidArgument(
                    f"file not found in build context or excluded by .dockerignore: "
                    f"stat {src}: file does not exist"
                )
            return [rel]
        found = [r for r, _ in self.walk(".") if r != "." and fnmatch.fnmatchcase(r, rel)]
        found = [r for r in found if _glob_ok(r, rel)]
        if not found:
            raise InvalidArgument(f"no source files were specified (nothing matches {src})")
        for r in found:
            self.resolve(r, r)
        return found

    def walk(self, rel: str) -> Iterator[tuple[str, Path]]:
        """(relative path, path) of `rel` and everything under it not ignored, sorted;
        symlinks inside are not followed (they are copied as links)."""
        top = self.root if rel in ("", ".") else self.root / rel
        yield rel, top
        if top.is_symlink() or not top.is_dir():
            return
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            child = entry.name if rel in ("", ".") else f"{rel}/{entry.name}"
            if self.ignored(child):
                if not self.ignore.has_exclusions or not entry.is_dir(follow_symlinks=False):
                    continue
                # an excluded directory may still hold re-included files
                inner = [x for x in self.walk(child) if x[0] != child and not self.ignored(x[0])]
                if inner:
                    yield child, Path(entry.path)
                    yield from inner
                continue
            yield from self.walk(child)

    def checksum(self, rels: list[str], shown: str = "") -> str:
        """Content digest of sources: names, types, modes, contents, link targets.

        Not mtimes or owners: touching a file or re-cloning the repository keeps
        the cache, as Docker's content-based COPY cache does.
        """
        h = hashlib.sha256()
        for rel in rels:
            top = self.resolve(rel, shown or rel)
            h.update(f"source {rel}\0".encode())
            items = list(self.walk_resolved(rel, top)) if top.is_dir() else [(rel, top)]
            for r, p in items:
                _hash_entry(h, r, p)
        return "sha256:" + h.hexdigest()

    def walk_resolved(self, rel: str, top: Path) -> Iterator[tuple[str, Path]]:
        """Like walk, but rooted at an already resolved directory `top` (whose real
        context-relative path may differ from `rel` through a symlink)."""
        real = str(top.relative_to(self.root)) if top != self.root else "."
        yield from self.walk(real)


def _glob_ok(path: str, pattern: str) -> bool:
    """filepath.Match semantics: `*` and `?` do not cross `/` (fnmatch's do)."""
    pp, fp = pattern.split("/"), path.split("/")
    return len(pp) == len(fp) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(fp, pp, strict=True)
    )


def _hash_entry(h: hashlib._Hash, rel: str, path: Path) -> None:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        h.update(f"L {rel} {os.readlink(path)}\0".encode())
    elif stat.S_ISDIR(st.st_mode):
        h.update(f"D {rel} {mode:o}\0".encode())
    elif stat.S_ISREG(st.st_mode):
        h.update(f"F {rel} {mode:o} {st.st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    else:
        h.update(f"O {rel} {st.st_mode:o}\0".encode())
