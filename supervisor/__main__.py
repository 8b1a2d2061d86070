"""`python -m supervisor ...` is the `corral` command (the auto-started daemon runs this way)."""

import sys

if sys.argv[1:2] == ["logs"]:  # its common forms before the CLI loads (cli/logslean)
    from supervisor.cli import logslean

    logslean.main(sys.argv[2:])  # returns only if the full CLI must answer

from supervisor.cli.main import main

raise SystemExit(main())
