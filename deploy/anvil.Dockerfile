# The dev chain: anvil from the pinned npm package @foundry-rs/anvil-linux-amd64 (package.json).
# Build context: the repository root (docker-compose.yml's `chain` service builds it).
FROM node:20-slim
WORKDIR /opt/evm
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && ln -s /opt/evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil /usr/local/bin/anvil \
    && anvil --version \
    && mkdir -p /state && chown node:node /state
USER node
VOLUME ["/state"]
EXPOSE 8545
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8545',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({jsonrpc:'2.0',id:1,method:'eth_blockNumber',params:[]})}).then(r=>r.json()).then(j=>process.exit(j.result?0:1)).catch(()=>process.exit(1))"]
ENTRYPOINT ["anvil"]
CMD ["--host", "0.0.0.0", "--port", "8545", "--state", "/state/anvil.json", "--state-interval", "60"]
