"""The embedder's ONNX Runtime path (Recruit, Execute): the same vectors as sentence-transformers
on torch, exported once per weights, chosen by default, torch as the fallback, and no torch in a
process that embeds with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from noosphere.models import embedding, onnx_embedding
from noosphere.models.embedding import MPNET, Embedder, EmbeddingError

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    model = Embedder(cache_size=0, backend="torch")
    model.load()
    return model


def texts() -> list[str]:
    lines = [line for line in README.read_text().splitlines() if line.strip()][:120]
    return [
        *lines,
        "",
        "   padded   ",
        "héllo wörld ✓ 日本語のテキスト",
        "word " * 600,  # far past the 256-token truncation
        README.read_text()[:6000],
        "what is 1234 * 5678?",
    ]


def test_onnx_is_the_default_for_minilm_and_matches_torch(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    assert embedder.backend == "onnx"
    onnx = Embedder(cache_size=0)
    onnx._model, onnx.backend = embedder._model, embedder.backend
    got, expected = onnx.encode(texts()), torch_embedder.encode(texts())
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    onnx.close()


def test_batches_and_order_do_not_change_the_vectors(embedder: Embedder) -> None:
    assert isinstance(embedder._model, onnx_embedding.OnnxEncoder)
    encoder = embedder._model
    sample = texts()
    together = encoder.encode(sample, batch_size=7)
    alone = np.stack([encoder.encode([text])[0] for text in sample])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_export_happens_once_per_weights(embedder: Embedder) -> None:
    assert isinstance(embedder._model, onnx_embedding.OnnxEncoder)
    path = embedder._model.model_path
    stamp = path.stat().st_mtime_ns
    again = onnx_embedding.exported_model(embedding._minilm_path(), embedding.MODEL_NAME)
    assert again == path and path.stat().st_mtime_ns == stamp
    assert path.name.startswith(f"{embedding.MODEL_NAME}-") and path.suffix == ".onnx"


def test_a_process_embedding_with_onnx_never_imports_torch(embedder: Embedder) -> None:
    script = textwrap.dedent(
        """
        import sys
        from noosphere.models.embedding import Embedder
        model = Embedder()
        assert model.encode(["hello"]).shape == (1, 384), model.backend
        assert model.backend == "onnx"
        print(sorted(m for m in ("torch", "sentence_transformers", "transformers")
                     if m in sys.modules))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Embedder(backend="torch").backend == "torch"
    assert Embedder(model=MPNET).backend == "torch"  # only MiniLM has the ONNX path
    monkeypatch.setenv("NOOSPHERE_EMBED_BACKEND", "torch")
    assert Embedder().backend == "torch"
    monkeypatch.setenv("NOOSPHERE_EMBED_BACKEND", "tensorflow")
    with pytest.raises(EmbeddingError, match="onnx or torch"):
        Embedder()


def test_a_failed_export_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch, torch_embedder: Embedder
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_embedding.OnnxEncoder, "__init__", broken)
    fallback = Embedder(cache_size=0, backend="onnx")
    vector = fallback.encode(["what is 1234 * 5678?"])
    assert fallback.backend == "torch"
    np.testing.assert_allclose(vector, torch_embedder.encode(["what is 1234 * 5678?"]), atol=1e-6)
    fallback.close()
