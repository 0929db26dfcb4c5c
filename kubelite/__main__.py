"""``python -m kubelite``: the same as the ``kubelite`` console script."""

from kubelite.cli.main import main

raise SystemExit(main())
