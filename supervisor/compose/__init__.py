"""Compose, the component: a project's containers, networks and volumes kept as its files say.

The pure core (load, normalize, plan) is `config/`; this package is the I/O around it,
written against one small engine interface (`engine.ComposeEngine`) so the same code runs
in the CLI over the API socket and in the daemon in-process:

- `engine`: the interface and the daemon's in-process implementation (`InProcessEngine`);
- `client`: the CLI's implementation over the socket (`AsyncApi`);
- `applier`: a plan carried out (`Applier.up/down`, conditions, secrets);
- `projects`: the projects the daemon keeps (`Keeper`: a table, `/corral/projects`);
- `servicesdir`: `daemon --services DIR`, a directory of service files kept true.

Nothing here imports `supervisor.cli`.
"""
