"""Sans-I/O HTTP/1.1 for corral's clients and its API server, in the shape of h11.

`server` holds `ServerConnection` (the API daemon's half) and `client` holds
`ClientConnection`: bytes in, events out, a state table.  The blocking CLI
client (`supervisor.api.client`), the trio compose client (`supervisor.compose.client`)
and the bench read responses through it, so response framing (Content-Length, chunked,
close-delimited, HEAD/1xx/204/304, the 101 upgrade and its leftover bytes) lives once.
The upgrade lives in both halves once: the server hands the bytes past a request to the
hijacked stream (`take_trailing_data`), the client reports them in `Upgrade.trailing`.

`__init__` and `client` import nothing: the CLI pays for every import on
each command (`server` needs `re`, `urllib.parse`, `http`, and only the daemon loads it).
"""
