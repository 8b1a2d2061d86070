"""Sans-I/O HTTP/1.1 for corral's clients and its API server, in the shape of h11.

`wire` is what both halves read alike: header lines, heads, Content-Length values,
chunk lines with their extensions, trailers, and `BodyReader`, the body framing state
machine.  `server` holds `ServerConnection` (the API daemon's half: requests,
keep-alive, 100-continue, `switch_protocols` for Docker's hijack and the websocket's
101) and `client` holds `ClientConnection` (the response framing: HEAD/1xx/204/304,
close-delimited, the upgrade and the stream bytes read past its head): bytes in,
events out, a state table each.  `websocket` is the attach websocket's handshake and
frames.  The I/O is the adapters': blocking for the CLI (`supervisor.api.client`),
trio for the daemon (`supervisor.api.server`, `supervisor.api.websocket`), the compose
client (`supervisor.compose.client`) and the bench.

`__init__`, `wire` and `client` import nothing: the CLI pays for every import on
each command (`server` needs `re`, `urllib.parse`, `http`, and only the daemon loads it).
"""
