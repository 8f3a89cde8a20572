"""The shipped Oxynet model and the TFLite runtime that runs it."""

from .oxynet import N_PAST_POINTS, ModelInfo, OxynetModel, bundled_model_version, get_model
from .runtime import RuntimeMissing, interpreter_class

__all__ = ["N_PAST_POINTS", "ModelInfo", "OxynetModel", "RuntimeMissing", "bundled_model_version",
           "get_model",
           "interpreter_class"]
