"""Fuzz the sans-I/O HTTP core (supervisor/httpcore/): any bytes, fed in any pieces,
give parsed requests (server half) or responses (client half), or one clean
`ProtocolError`, never another exception, never a loop; a body ends exactly where its
framing says.  Both halves read one grammar, so one set of pieces drives both."""

from __future__ import annotations

from fuzzing import case, fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from supervisor.httpcore.client import ClientConnection, Response, Upgrade
from supervisor.httpcore.server import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    ServerConnection,
    parse_target,
)

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get", "G T", "", "P\x00ST", "É"]
TARGETS = [
    "/_ping",
    "/v1.44/containers/create?name=x",
    "/containers/json?all=1&filters=%7B%7D",
    "*",
    "http://localhost/version",
    "http://[::1/x",
    "http://[zz]/",
    "//double",
    "/a%00b",
    "/%ff%fe",
    "/?a=%zz&&=b&c",
    "ftp:x",
    "x",
    "/" + "a" * 300,
]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.9", "HTTP/0.9", "HTTP/x", "http/1.1", ""]
HEADER_NAMES = [
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Expect",
    "Connection",
    "Upgrade",
    "Content-Type",
    "X-Registry-Auth",
    "bad name",
    "",
    " Host",
    "Host ",
]
HEADER_VALUES = [
    "localhost",
    "0",
    "5",
    " 5 ",
    "5, 5",
    "5,6",
    "-1",
    "+5",
    "0x10",
    "1" * 25,
    "\u00b2",  # a digit to str.isdigit(), not to int()
    "\u0665",
    "chunked",
    "gzip, chunked",
    "chunked, chunked",
    "identity",
    "100-continue",
    "keep-alive, Upgrade",
    "tcp",
    "a\x00b",
    "a\rb",
    "\x7f",
    "\xff\xfe",
    "",
]
EOLS = ["\r\n", "\n", "\r"]


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(max_size=20))
        size = draw(st.sampled_from([len(data), len(data) + 1, max(len(data) - 1, 0)]))
        size_text = draw(
            st.sampled_from([f"{size:x}", f"{size:X}", f"0{size:x}", f"{size:x};a=b", f"{size:x} "])
        )
        out += size_text.encode() + draw(st.sampled_from([b"\r\n", b"\n"])) + data
        out += draw(st.sampled_from([b"\r\n", b"\n", b"", b"xx"]))
    out += draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n", b"0\r\n", b"", b"z\r\n"]))
    return out


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "POST"]) | st.sampled_from(METHODS) | st.text(max_size=8))
    target = draw(st.sampled_from(TARGETS) | st.text(max_size=30).map(lambda t: "/" + t))
    version = draw(st.sampled_from(VERSIONS))
    eol = draw(st.sampled_from(EOLS))
    headers = draw(
        st.lists(
            st.tuples(
                st.sampled_from(HEADER_NAMES) | st.text(max_size=10),
                st.sampled_from(HEADER_VALUES) | st.text(max_size=20),
            ),
            max_size=6,
        )
    )
    head = f"{method} {target} {version}{eol}" + "".join(f"{k}: {v}{eol}" for k, v in headers)
    body = draw(chunked_body() | st.binary(max_size=40))
    msg = head.encode("utf-8", "surrogatepass") + eol.encode() + body
    # byte-level mutations (in one case of four): flip, insert, delete
    edits = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 2), st.integers(0, 255)))
    for pos, op, byte in draw(st.just([]) | st.just([]) | st.just([]) | edits):
        p = pos % (len(msg) + 1)
        if op == 0:
            msg = msg[:p] + bytes([byte]) + msg[p + 1 :]
        elif op == 1:
            msg = msg[:p] + bytes([byte]) + msg[p:]
        else:
            msg = msg[:p] + msg[p + 1 :]
    repeat = draw(st.integers(1, 2))  # pipelined
    return msg * repeat


def drive(pieces: list[bytes], eof: bool) -> list[object]:
    """Feed `pieces` as the server does, answering each request; the events seen."""
    conn = ServerConnection()
    seen: list[object] = []
    body = 0
    for i, piece in enumerate([*pieces, b""] if eof else pieces):
        conn.feed(piece)
        for _ in range(10_000):
            ev = conn.next_event()
            if ev is NEED_DATA:
                assert not (eof and i == len(pieces)), "NEED_DATA after EOF"
                break
            seen.append(ev)
            if isinstance(ev, ConnectionClosed):
                return seen
            if isinstance(ev, Request):
                assert ev.http_version in ("1.0", "1.1")
                # ("ftp:x" is a valid absolute-form target whose path is "x": the router
                # answers 404 to it like to any unknown path)
                assert isinstance(ev.path, str)
                body = 0
                conn.take_continue()
            elif isinstance(ev, Data):
                body += len(ev.data)
            elif isinstance(ev, EndOfMessage):
                req = conn.request
                assert req is not None
                cl = req.headers.get("content-length")
                if cl is not None and not req.headers.get("transfer-encoding"):
                    assert body == int(cl.split(",")[0].strip())
                conn.response_started()
                if req.wants_upgrade:
                    conn.take_trailing_data()
                    return seen
        else:
            raise AssertionError("the parser did not stop asking for events")
    return seen


@fuzz(ci_cases=500)
@given(raw_requests(), st.lists(st.integers(1, 64), max_size=5), st.booleans())
@example(b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", [], True)  # isdigit() but not int()
@example(b"GET http://[::1/x HTTP/1.1\r\n\r\n", [], True)  # urlsplit raises ValueError
def test_http_parser_any_bytes(msg: bytes, cuts: list[int], eof: bool) -> None:
    pieces, rest = [], msg
    for n in cuts:
        pieces.append(rest[:n])
        rest = rest[n:]
    pieces.append(rest)
    pieces = [p for p in pieces if p]
    with case("http parser", ProtocolError) as fig:
        try:
            drive(pieces, eof)
        except ProtocolError as exc:
            assert 400 <= exc.status <= 599 and exc.message
            raise
    assert fig.cases


@fuzz(ci_cases=300)
@given(st.text(max_size=60).map("/".__add__) | st.text(max_size=60) | st.sampled_from(TARGETS))
def test_http_parse_target_any_text(target: str) -> None:
    with case("http target", ProtocolError):
        path, query = parse_target(target)
        assert isinstance(path, str)
        assert all(isinstance(v, list) for v in query.values())


STATUS_LINES = [
    "HTTP/1.1 200 OK",
    "HTTP/1.0 200 OK",
    "HTTP/1.1 204 No Content",
    "HTTP/1.1 304 Not Modified",
    "HTTP/1.1 100 Continue",
    "HTTP/1.1 101 UPGRADED",
    "HTTP/1.1 404 Not Found",
    "HTTP/2 200",
    "HTTP/1.1 2000 OK",
    "SSH-2.0-x",
    "",
]


@st.composite
def raw_responses(draw: st.DrawFn) -> bytes:
    # mostly status lines a server sends, so framing (not the first line) gets fuzzed
    status = draw(st.sampled_from(STATUS_LINES[:7] * 4 + STATUS_LINES) | st.text(max_size=12))
    eol = draw(st.sampled_from(EOLS))
    headers = draw(
        st.lists(
            st.tuples(
                st.sampled_from(HEADER_NAMES[:7]) | st.sampled_from(HEADER_NAMES),
                st.sampled_from(HEADER_VALUES) | st.text(max_size=20),
            ),
            max_size=4,
        )
    )
    head = f"{status}{eol}" + "".join(f"{k}: {v}{eol}" for k, v in headers)
    body = draw(chunked_body() | st.binary(max_size=40))
    return head.encode("utf-8", "surrogatepass") + eol.encode() + body


@fuzz(ci_cases=300)
@given(
    raw_responses(),
    st.lists(st.integers(1, 64), max_size=5),
    st.sampled_from(["GET", "HEAD", "POST"]),
    st.booleans(),
)
def test_http_client_any_bytes(msg: bytes, cuts: list[int], method: str, upgrade: bool) -> None:
    pieces, rest = [], msg
    for n in cuts:
        pieces.append(rest[:n])
        rest = rest[n:]
    pieces = [p for p in [*pieces, rest] if p]
    conn = ClientConnection()
    asked = [("Host", "corral")] + ([("Connection", "Upgrade"), ("Upgrade", "tcp")] * upgrade)
    conn.send_request(method, "/x", asked)
    with case("http client", ProtocolError):
        events: list[object] = []
        for piece in [*pieces, b""]:  # the daemon closes after its answer
            conn.receive_data(piece)
            for _ in range(10_000):
                ev = conn.next_event()
                if ev is NEED_DATA:
                    assert piece, "NEED_DATA after EOF"
                    break
                events.append(ev)
                if isinstance(ev, Upgrade | EndOfMessage):
                    break
            else:
                raise AssertionError("the client did not stop asking for events")
            if events and isinstance(events[-1], Upgrade | EndOfMessage):
                break
        head = events[0]
        assert isinstance(head, Response) and 100 <= head.status <= 999
        length = head.headers.get("content-length")
        framed = head.status not in (204, 304) and "transfer-encoding" not in head.headers
        if isinstance(events[-1], EndOfMessage) and length and method != "HEAD" and framed:
            assert sum(len(e.data) for e in events if isinstance(e, Data)) == int(length)
