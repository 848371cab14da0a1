# syntax=docker/dockerfile:1
# hypert5-serve: the HTTP service on ONNX Runtime (CPU). Build: docker build -t hypert5-serve .
# The runtime stage is reproduced without Docker by scripts/container-check.ts (a test in npm test).
# Node 24 (LTS), pinned by exact version; pin by digest too (node:24.22.3-bookworm-slim@sha256:...)
# where images are promoted. Its npm (11.19) is the one that reads package.json's allowScripts.

# ---- build: compile TypeScript with the dev dependencies ---------------------------------------
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /src
# package.json's allowScripts with .npmrc: esbuild's install script runs, onnxruntime-node's (a CUDA
# download; the CPU build ships in the package) does not, and an unreviewed one fails the build.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled code, model bundles -----------------------------
FROM node:24.22.3-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM to node (graceful drain) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0 \
    MODEL_DIR=/app/models/default \
    ADAPTER_STORE_DIR=/data/adapters
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY models ./models
COPY openapi.yaml ./
# The code and models stay root-owned and read-only to the service; it writes only its adapter store.
# 1000 is the image's "node" user, numeric so that Kubernetes runAsNonRoot can check it.
RUN mkdir -p /data/adapters && chown -R 1000:1000 /data
USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server.js"]
