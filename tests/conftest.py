import os
from pathlib import Path

pytest_plugins = ["ari_proxy.testing.pytest_plugin"]

# The recorded Go traffic (tests/vectors/README.md says where it comes from).
os.environ.setdefault("ARI_PROXY_VECTORS", str(Path(__file__).resolve().parent / "vectors"))
