"""``python -m pytest_inferedgeforge`` runs the CLI."""

from pytest_inferedgeforge.cli.main import main

raise SystemExit(main())
