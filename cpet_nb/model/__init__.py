"""pyoxynet's threshold models (the shipped TFLite files) and the runtime that runs them."""

from .oxynet import (
    DEFAULT_MODEL,
    MODEL_NAMES,
    N_PAST_POINTS,
    ModelInfo,
    OxynetModel,
    bundled_model_version,
    get_model,
    read_provenance,
)
from .runtime import RuntimeMissing, interpreter_class

__all__ = ["DEFAULT_MODEL", "MODEL_NAMES", "N_PAST_POINTS", "ModelInfo", "OxynetModel",
           "RuntimeMissing", "bundled_model_version", "get_model", "interpreter_class",
           "read_provenance"]
