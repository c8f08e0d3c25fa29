"""segbench's core: plugin contracts, runner, run store, leaderboards and regression checks."""

from harness.hookspecs import hookimpl
from harness.types import (
    BUDGETS,
    Budget,
    DataError,
    Dataset,
    ImagePair,
    Method,
    MetricSpec,
    PluginError,
    Prediction,
    RunContext,
    Sample,
    mean_of_values,
)

__version__ = "0.1.0"

__all__ = [
    "BUDGETS",
    "Budget",
    "DataError",
    "Dataset",
    "ImagePair",
    "Method",
    "MetricSpec",
    "PluginError",
    "Prediction",
    "RunContext",
    "Sample",
    "__version__",
    "hookimpl",
    "mean_of_values",
]
