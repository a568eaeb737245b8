"""The attribution layer's user errors: one base type the CLI turns into a message and exit code 2.

Every error a user can cause and fix (a bad build config, a bad manifest, a run folder that holds other
inputs, a checkpoint that safe loading refuses) derives from :class:`AttributionError`. Each message names
the file, key or value at fault and says what to do. Subclasses of :class:`ValueError`, so callers that
caught ``ValueError`` before keep working.

* :class:`AttributionError` – the base (also of ``BuildConfigError``, ``CorpusError``, ``AttributionTableError``).
* :class:`RunFolderError`   – a run or training folder cannot be used as asked: it holds artefacts of other
  inputs (refused before anything is written), it is a file, or it cannot be written.
* :class:`CheckpointError`  – a checkpoint that is unreadable or holds more than tensors and plain data.
* :class:`FeatureStoreError` – a run's stored TRAK features are missing, unfinished or of other inputs.
"""

from __future__ import annotations

__all__ = ["AttributionError", "CheckpointError", "FeatureStoreError", "RunFolderError"]


class AttributionError(ValueError):
    """A user error in the attribution layer; the message says what is wrong and how to fix it."""


class RunFolderError(AttributionError):
    """A run or training folder holds artefacts of other inputs, or cannot be written."""


class CheckpointError(AttributionError):
    """A checkpoint file is unreadable, or holds Python objects that safe loading refuses."""


class FeatureStoreError(AttributionError):
    """A run's stored TRAK features are missing, unfinished, or were made from other checkpoints or windows."""
