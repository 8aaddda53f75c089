"""The typed ARI models and events of Asterisk 22 (generated; see `ari_proxy.spec`)."""

from ..spec.models import *  # noqa: F403
from ..spec.models import __all__ as __all__
