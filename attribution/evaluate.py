"""Attribution faithfulness (moved): the evaluation is the package :mod:`attribution.evaluation`.

This module re-exports its public names so ``from attribution.evaluate import evaluate, lds_table`` (the CLI,
the benchmarks, notebooks) keeps working.
"""

from .evaluation import *  # noqa: F401,F403
from .evaluation import __all__  # noqa: F401
