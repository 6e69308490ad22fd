# The dev chain: anvil from the pinned npm package @foundry-rs/anvil-linux-amd64 (package.json,
# package-lock.json). Build context: the repository root (docker-compose.yml's `chain` service
# builds it): docker build -t noosphere-anvil:dev -f deploy/anvil.Dockerfile .
#
# Build arguments (defaults: from the internet):
#   NODE_IMAGE           stage 1, where npm installs the package (default node:20-slim)
#   BASE_IMAGE           the runtime: any Debian image (default debian:bookworm-slim)
#   APT_MIRROR           Debian mirror URL replacing the runtime base's (empty: keep the base's)
#   NPM_CONFIG_REGISTRY  npm registry or mirror (default https://registry.npmjs.org/)
# Offline: put the package's tarball in deploy/npm/ (`npm pack @foundry-rs/anvil-linux-amd64@V
# --pack-destination deploy/npm`, checked against package-lock.json by scripts/compose_test.sh);
# stage 1 then unpacks it instead of calling npm, so NODE_IMAGE may be any image with tar.

ARG NODE_IMAGE=node:20-slim
ARG BASE_IMAGE=debian:bookworm-slim

# ---- anvil from npm ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS anvil
WORKDIR /opt/evm
COPY package.json package-lock.json ./
COPY deploy/npm/ /npm/
ARG NPM_CONFIG_REGISTRY=https://registry.npmjs.org/
RUN set -eu; \
    pkg=node_modules/@foundry-rs/anvil-linux-amd64; \
    tarball=$(ls /npm/foundry-rs-anvil-linux-amd64-*.tgz 2>/dev/null | head -n 1); \
    if [ -n "$tarball" ]; then \
        mkdir -p "$pkg" && tar -xzf "$tarball" --strip-components=1 -C "$pkg"; \
    else \
        npm ci --omit=dev --ignore-scripts --no-audit --no-fund; \
    fi; \
    install -m 0755 "$pkg/bin/anvil" /usr/local/bin/anvil; \
    /usr/local/bin/anvil --version

# ---- runtime ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG APT_MIRROR=
# busybox: its `wget` is the healthcheck's HTTP client. /state is created owned by the chain's
# user, so the named volume mounted there starts with that owner.
COPY deploy/apt-install.sh /usr/local/sbin/apt-install
RUN APT_MIRROR="$APT_MIRROR" apt-install busybox \
    && rm /usr/local/sbin/apt-install \
    && groupadd --system --gid 10002 anvil \
    && useradd --system --uid 10002 --gid 10002 --no-create-home --shell /usr/sbin/nologin anvil \
    && install -d -o 10002 -g 10002 -m 0700 /state
COPY --from=anvil /usr/local/bin/anvil /usr/local/bin/anvil
USER 10002:10002
VOLUME ["/state"]
EXPOSE 8545
# eth_blockNumber over HTTP; busybox wget exits 1 on a refused connection or an error status.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["busybox", "wget", "-q", "-O", "/dev/null", "--header", "content-type: application/json", "--post-data", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}", "http://127.0.0.1:8545"]
ENTRYPOINT ["anvil"]
CMD ["--host", "0.0.0.0", "--port", "8545", "--state", "/state/anvil.json", "--state-interval", "60"]
