"""Image references, parsed the way Docker's distribution/reference package does.

Pure functions only: every user-typed image name passes through `parse`, so the rules
(and the error messages) must match Docker's or `docker run Foo` and `docker tag x a::b`
would behave differently against corral than against dockerd.  Names are normalised to
`docker.io/library/...` for comparison but shown in the *familiar* form (`busybox`),
which is also the form the tags table stores.
"""

from __future__ import annotations

import re

from supervisor.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
TAG_RE = re.compile(_TAG)
ID_RE = re.compile(r"[0-9a-f]{64}")
ID_PREFIX_RE = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


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
    if ID_RE.fullmatch(s):
        raise _invalid(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(s)
    remote = remainder.split("@", 1)[0].split(":", 1)[0]
    if remote.lower() != remote:
        raise _invalid(f"repository name ({remote}) must be lowercase")
    m = REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if m is None:
        raise _invalid(repr(s))
    canonical, tag, digest = m.group(1), m.group(2), m.group(3)
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
    return ID_PREFIX_RE.fullmatch(s) is not None


def is_full_id(s: str) -> bool:
    """A complete image ID, bare or `sha256:`-prefixed."""
    return ID_RE.fullmatch(s.removeprefix("sha256:")) is not None
