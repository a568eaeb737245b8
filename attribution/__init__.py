"""royaltysim's attribution core: real music -> trained model -> generated pieces -> attribution table.

Importing this package does not import torch; the modules that need it (``model``, ``train``,
``scoring`` ...) import it themselves.
"""

__all__ = [
    "audio", "best_method", "build", "config", "content_id", "content_id_page", "corpus", "errors", "generate", "midi", "model", "piece_scores", "prompted", "quality", "runfolder", "scoring", "similarity", "snr", "table",
    "tokenize", "train", "windows",
]
