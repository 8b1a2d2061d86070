"""The metadata layer: the one SQLite database under the state root and its schema.

The bottom layer: the engine, images, network, supervise (and pods, compose, build,
distribution) keep their records as tables on it; it imports none of them
(`tests/test_engine_layers.py`), so a record's storage never depends on the code
that decides what goes in it.  `database` is the connection (WAL, `persist` for a
full disk), `migrations` the numbered schema steps (`PRAGMA user_version`).
"""
