"""Random bodies, of the right types and of wrong ones, against a running daemon.

Seeded and bounded (CORRAL_FUZZ_CASES per body kind, 60 by default; raise it for a
longer run): values are drawn from the API's own type table (`supervisor/api/types.py`)
so every field is reached, then some are swapped for values of another JSON kind.
Whatever the daemon makes of them, a client's body is never a 5xx.  The figures are
printed (`-s`).  Found this way: a 300-character volume name (ENAMETOOLONG).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from conftest import Daemon
from test_api_malformed import IMAGE, call

from supervisor.api import types as T

CASES = int(os.environ.get("CORRAL_FUZZ_CASES", "60"))
STRINGS = ["", "x", "a b", "/abs", "rel/p", "1", "-1", "none", "host", "container:x", "é",
           "x" * 300, "a:b", "a=b", "80/tcp", "1.2.3.4", "::1", "a\nb"]  # fmt: skip
INTS = [0, 1, -1, 7, 2**31, 2**63 - 1, -(2**63)]
WRONG: list[Any] = ["x", 5, 1.5, True, [], {}, [1], {"a": 1}]


def value_of(t: T.GoType, rnd: random.Random, wrong: float) -> Any:
    """A value for type `t`; with probability `wrong`, one of another kind."""
    if rnd.random() < wrong:
        return rnd.choice(WRONG)
    if isinstance(t, T.Scalar):
        if t.kind == "string":
            return rnd.choice(STRINGS)
        if t.kind == "bool":
            return rnd.random() < 0.5
        if t.kind == "int":
            return rnd.choice(INTS)
        if t.kind == "uint":
            return rnd.choice([0, 1, 100, (1 << t.bits) - 1])
        return rnd.choice(WRONG)
    if isinstance(t, T.StrSlice):
        if rnd.random() < 0.3:
            return rnd.choice(STRINGS)
        return [rnd.choice(STRINGS) for _ in range(rnd.randint(0, 2))]
    if isinstance(t, T.Slice):
        return [value_of(t.elem, rnd, wrong) for _ in range(rnd.randint(0, 2))]
    if isinstance(t, T.Map):
        return {rnd.choice(STRINGS): value_of(t.elem, rnd, wrong) for _ in range(rnd.randint(0, 2))}
    fields = list(t.fields.items())
    chosen = rnd.sample(fields, min(len(fields), rnd.randint(1, 3)))
    return {name: value_of(ft, rnd, wrong) for name, ft in chosen}


def test_random_bodies_are_never_a_server_error(corral: Daemon) -> None:
    r = corral.docker("run", "-d", IMAGE, "sleep", "600")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    routes: list[tuple[str, T.Struct]] = [
        ("/containers/create", T.CREATE_REQUEST),
        (f"/containers/{cid}/update", T.UPDATE_CONFIG),
        (f"/containers/{cid}/exec", T.EXEC_OPTIONS),
        ("/networks/create", T.NETWORK_CREATE),
        ("/networks/bridge/connect", T.NETWORK_CONNECT),
        ("/volumes/create", T.VOLUME_CREATE),
    ]
    rnd = random.Random(12)
    hc_fields = list(T.HOST_CONFIG.fields.items())
    statuses: dict[int, int] = {}
    server_errors = []
    for route, struct in routes:
        for i in range(CASES):
            wrong = 0.0 if i % 2 else 0.2  # half well-typed: they reach the engine
            body = value_of(struct, rnd, 0.0)  # an object, its fields maybe wrong:
            body = {k: value_of(struct.fields[k], rnd, wrong) for k in body}
            if struct is T.CREATE_REQUEST:
                body.update(Image=IMAGE, Cmd=["true"])
                body["HostConfig"] = {
                    name: value_of(ft, rnd, wrong) for name, ft in rnd.sample(hc_fields, 2)
                }
            status, message = call(corral.sock, "POST", route, json.dumps(body).encode())
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500:
                server_errors.append(f"{route} {json.dumps(body)[:200]} -> {message[:120]}")
    print(f"\n{sum(statuses.values())} random bodies: statuses {dict(sorted(statuses.items()))}")
    assert server_errors == []
