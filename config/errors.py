"""Where a problem is in a service file, and the errors/warnings that carry it.

Every message a user sees about a file starts with `file:line:col:` so an editor can jump
to it; positions come from the YAML nodes (see `config.yamlload`).
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]  # a location in the document: ("services", "web", "ports", 0)


def dotted(path: Path) -> str:
    """("services", "web", "ports", 0) → "services.web.ports[0]", as messages name it."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


@dataclass(frozen=True)
class Position:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    position: Position | None
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.message}" if self.position else self.message


class ConfigError(Exception):
    """One or more problems that make the project unusable: nothing may be started."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def at(cls, position: Position | None, message: str) -> ConfigError:
        return cls([Problem(position, message)])


class Positions:
    """Path → where it was written, across every file of a project.

    Later files overwrite earlier ones at the same path, matching the merge rule that the
    last file's value wins, so an error about a merged value points where it came from.
    """

    def __init__(self) -> None:
        self._at: dict[Path, Position] = {}

    def set(self, path: Path, pos: Position) -> None:
        self._at[path] = pos

    def update(self, other: Positions) -> None:
        self._at.update(other._at)

    def get(self, path: Path) -> Position | None:
        """The position of `path`, else of its nearest written ancestor."""
        while True:
            pos = self._at.get(path)
            if pos is not None or not path:
                return pos
            path = path[:-1]

    def key(self, path: Path) -> Position | None:
        """Where the *key* of a mapping entry was written (for unknown-key messages)."""
        return self._at.get(("key", *path)) or self.get(path)

    def set_key(self, path: Path, pos: Position) -> None:
        self._at[("key", *path)] = pos
