"""``python -m kubelet``: run the kubelet (see ``--help``)."""

from kubelet.app import main

raise SystemExit(main())
