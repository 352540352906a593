"""Models: from-scratch Llama presets, parameter counting and offline loading of local checkpoints."""

from mathforge.models.loading import load_model
from mathforge.models.presets import PRESETS, build_model, count_params, preset_config

__all__ = ["PRESETS", "build_model", "count_params", "load_model", "preset_config"]
