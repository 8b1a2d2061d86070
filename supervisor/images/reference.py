"""Image references, parsed the way Docker's distribution/reference package does.

Pure functions only: every user-typed image name passes through `parse`, so the rules
(and the error messages) must match Docker's or `docker run Foo` and `docker tag x a::b`
would behave differently against corral than against dockerd.  Names are normalised to
`docker.io/library/...` for comparison but shown in the *familiar* form (`busybox`),
which is also the form the tags table stores.
"""

from __future__ import annotations

from supervisor.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# Docker's grammar (distribution/reference's regexp.go), matched by hand rather than
# with `re`: every `corral pull`, `push` and `run` parses a name, and `import re`
# (enum, functools, collections and the compiler) is a quarter of the CLI's start.
# tests/test_images_reference.py holds the grammar as regular expressions and checks
# this matcher against them.
#   name      = [domain "/"] path-component *("/" path-component)
#   path-comp = alnum *(separator alnum); alnum = [a-z0-9]+; separator = [._] | "__" | "-"+
#   domain    = (domain-comp *("." domain-comp) | "[" [a-fA-F0-9:]+ "]") [":" [0-9]+]
#   domain-comp = [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
#   tag       = [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
#   digest    = algo ":" hex{32,}; algo = [A-Za-z][A-Za-z0-9]* *([-_+.] [A-Za-z][A-Za-z0-9]*)
_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_LETTERS = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PATH_ALNUM = _LOWER | _DIGITS
_ALNUM = _LETTERS | _DIGITS
_DOMAIN_CHARS = _ALNUM | {"-"}
_WORD = _ALNUM | {"_"}
_TAG_CHARS = _WORD | {".", "-"}
_HEX = frozenset("0123456789abcdefABCDEF")
_LOWER_HEX = frozenset("0123456789abcdef")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def _is_path_component(s: str) -> bool:
    i, n = 0, len(s)
    while True:
        j = i
        while j < n and s[j] in _PATH_ALNUM:
            j += 1
        if j == i:
            return False
        if j == n:
            return True
        c = s[j]
        if c == ".":
            i = j + 1
        elif c == "_":
            i = j + 2 if s.startswith("_", j + 1) else j + 1
        elif c == "-":
            i = j + 1
            while i < n and s[i] == "-":
                i += 1
        else:
            return False


def _is_domain(s: str) -> bool:
    host, port = s, ""
    if s.startswith("["):
        end = s.find("]")
        if end < 2 or not all(c in _HEX or c == ":" for c in s[1:end]):
            return False
        host, rest = "", s[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
            if not port:
                return False
    else:
        host, colon, port = s.partition(":")
        if colon and not port:
            return False
        for part in host.split("."):
            if not part or part[0] == "-" or part[-1] == "-" or not all(
                    c in _DOMAIN_CHARS for c in part):
                return False
    return all(c in _DIGITS for c in port)


def _is_name(s: str) -> bool:
    parts = s.split("/")
    if len(parts) > 1 and _is_domain(parts[0]):
        parts = parts[1:]
    return all(_is_path_component(p) for p in parts)


def is_tag(s: str) -> bool:
    """A tag as Docker's grammar has it (ASCII word characters, `.`, `-`; 128 at most)."""
    return 0 < len(s) <= 128 and s[0] in _WORD and all(c in _TAG_CHARS for c in s)


def _is_digest(s: str) -> bool:
    algo, colon, hexpart = s.partition(":")
    if not colon or len(hexpart) < 32 or not all(c in _HEX for c in hexpart):
        return False
    for sep in "-_+":
        algo = algo.replace(sep, ".")
    return all(p and p[0] in _LETTERS and all(c in _ALNUM for c in p)
               for p in algo.split("."))


def match(s: str) -> tuple[str, str | None, str | None] | None:
    """`s` as (name, tag, digest) when the whole of it is a reference in Docker's
    grammar (its `ReferenceRegexp`), else None."""
    rest, at, digest = s.partition("@")
    if at and not _is_digest(digest):
        return None
    slash = rest.rfind("/")
    colon = rest.find(":", slash + 1)
    name, tag = (rest[:colon], rest[colon + 1:]) if colon >= 0 else (rest, None)
    if tag is not None and not is_tag(tag):
        return None
    if not _is_name(name):
        return None
    return name, tag, digest if at else None


def is_hex_id(s: str) -> bool:
    """64 lower-case hex digits: an image ID without its `sha256:`."""
    return len(s) == 64 and all(c in _LOWER_HEX for c in s)


class Reference:
    """A parsed reference.  `repository` is familiar (`busybox`, `foo/bar`,
    `localhost:5000/a/b`); `canonical` is fully qualified (`docker.io/library/busybox`).
    Immutable, compared and hashed by its four fields.  (Written out rather than a
    frozen dataclass: every `corral pull`, `push` and `run` parses a name, and
    `dataclasses` pulls in `inspect`, a fifth of the CLI's start.)"""

    __slots__ = ("repository", "canonical", "tag", "digest")
    repository: str
    canonical: str
    tag: str | None
    digest: str | None

    def __init__(self, repository: str, canonical: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        for k, v in (("repository", repository), ("canonical", canonical), ("tag", tag),
                     ("digest", digest)):
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _key(self) -> tuple[str, str, str | None, str | None]:
        return (self.repository, self.canonical, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Reference)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Reference(repository={self.repository!r}, canonical={self.canonical!r}, "
                f"tag={self.tag!r}, digest={self.digest!r})")

    def name(self) -> str:
        """The key the tags table uses: `repo:tag`, `latest` when nothing was given;
        `repo@digest` for a digest-only reference."""
        if self.tag is not None:
            return f"{self.repository}:{self.tag}"
        if self.digest is not None:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{DEFAULT_TAG}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s


def _invalid(detail: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {detail}")


def _split_domain(s: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry only if it looks
    like one (has `.` or `:`, is `localhost`, or has capitals)."""
    first, sep, rest = s.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, s
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder.split("@", 1)[0]:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def familiar(canonical: str) -> str:
    """`docker.io/library/busybox` -> `busybox`, `docker.io/foo/bar` -> `foo/bar`."""
    domain, _, path = canonical.partition("/")
    if domain != DEFAULT_DOMAIN:
        return canonical
    if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
        return path[len(OFFICIAL_PREFIX) :]
    return path


def parse(s: str) -> Reference:
    """Parse a user-typed reference (ParseNormalizedNamed); raise InvalidArgument."""
    if not s:
        raise _invalid("repository name must have at least one component")
    if is_hex_id(s):
        raise _invalid(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(s)
    remote = remainder.split("@", 1)[0].split(":", 1)[0]
    if remote.lower() != remote:
        raise _invalid(f"repository name ({remote}) must be lowercase")
    m = match(f"{domain}/{remainder}")
    if m is None:
        raise _invalid(repr(s))
    canonical, tag, digest = m
    if len(canonical) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        algo, _, hexpart = digest.partition(":")
        want = _DIGEST_LENGTHS.get(algo)
        if want is None:
            raise _invalid(f"unsupported digest algorithm in {s!r}")
        if len(hexpart) != want:
            raise _invalid(f"invalid checksum digest length in {s!r}")
        digest = f"{algo}:{hexpart.lower()}"
    return Reference(repository=familiar(canonical), canonical=canonical, tag=tag, digest=digest)


def looks_like_id_prefix(s: str) -> bool:
    """True for `abc123`, `sha256:abc123`, a full 64-hex ID: what `docker rmi <id>` takes."""
    s = s.removeprefix("sha256:")
    return 0 < len(s) <= 64 and all(c in _LOWER_HEX for c in s)


def is_full_id(s: str) -> bool:
    """A complete image ID, bare or `sha256:`-prefixed."""
    return is_hex_id(s.removeprefix("sha256:"))
