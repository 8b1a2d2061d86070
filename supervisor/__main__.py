"""`python -m supervisor ...` is the `corral` command (the auto-started daemon runs this way)."""

from supervisor.cli.main import main

raise SystemExit(main())
