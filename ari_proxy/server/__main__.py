"""`python -m ari_proxy.server`: the same as the `ari-proxy` command."""

import sys

from ._cli import main

sys.exit(main())
