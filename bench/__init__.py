"""corral's benchmark: every scenario runs corral and Podman in the same run, as ratios.

Run `python -m bench --help` from the repository root.  Layout: `registry.py` lists the
scenarios (one module each under `scenarios/`), `engines/` drives corral and Podman the
same way, `stats.py` and `report.py` turn samples into the markdown table and the JSON.
"""
