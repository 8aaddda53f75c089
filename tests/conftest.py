import os
from pathlib import Path

pytest_plugins = ["ari_proxy.testing.pytest_plugin"]

# The recorded Go traffic lives beside the checkout, in ../shared/vectors.
os.environ.setdefault(
    "ARI_PROXY_VECTORS", str(Path(__file__).resolve().parents[1].parent / "shared" / "vectors")
)
