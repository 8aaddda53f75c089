"""The typed ARI models and events of Asterisk 22 (generated; see `_models`)."""

from ._models import *  # noqa: F403
from ._models import __all__ as __all__
