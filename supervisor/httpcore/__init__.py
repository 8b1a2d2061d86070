"""Sans-I/O HTTP/1.1 for corral's own clients, in the shape of h11.

`client` holds `ClientConnection`: bytes in, events out, a state table; the blocking CLI
client (`supervisor.api.client`), the trio compose client (`supervisor.cli.compose_api`)
and the bench read responses through it, so response framing (Content-Length, chunked,
close-delimited, HEAD/1xx/204/304, the 101 upgrade and its leftover bytes) lives once.
The server half is `supervisor.api.http.ServerConnection`.

This package imports nothing beyond the standard library's builtins: the CLI pays for
every import on each command.
"""
