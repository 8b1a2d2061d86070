"""One module per scenario, each exposing `SCENARIO` (see `bench/registry.py`)."""
