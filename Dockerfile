# syntax=docker/dockerfile:1
# Multi-stage, multi-arch image of the chatbox service.
#   docker buildx build --platform linux/amd64,linux/arm64 -t chatbox .
# The build stage runs on the builder's own platform (TypeScript output is platform-neutral);
# production dependencies are installed on the target platform so native modules match it.
#
# Base image: Node 24 (LTS; package.json `engines` agrees), pinned by the digest of its multi-arch
# index so every rebuild starts from the same bytes. The digest is the one node:24-alpine had on
# 2026-08-21 (read from a BuildKit log of that day: the machine this was written on cannot reach
# Docker Hub). To move the pin (Node patch releases, Alpine security fixes) resolve the tag again,
# replace the digest and let CI build and scan the image:
#   docker buildx imagetools inspect node:24-alpine --format '{{json .Manifest.Digest}}'
#   (or: crane digest node:24-alpine; skopeo inspect --format '{{.Digest}}' docker://node:24-alpine)
# .github/dependabot.yml proposes the same change when a new image is published.
ARG NODE_IMAGE=node:24-alpine@sha256:d32cdf619f63fe0471182d08996dd516c6275bb5fd31ae06e55a570bd9e1ad43

FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY apps ./apps
COPY libs ./libs
RUN npm run build

FROM ${NODE_IMAGE} AS deps
ARG TARGETPLATFORM
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out the embedded PostgreSQL binaries (~60 MB, development only: the image
# runs with MONGO_URI).
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ARG TARGETPLATFORM
ENV NODE_ENV=production \
    PORT=8080 \
    CHATBOX_PATH_PREFIX=/chatbox \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps --chown=1000:1000 /app/node_modules ./node_modules
COPY --from=build --chown=1000:1000 /app/dist ./dist
COPY --from=build --chown=1000:1000 /app/apps/chatbox/public ./apps/chatbox/public
COPY --chown=1000:1000 package.json ./
# DATA_DIR holds local uploads (STORAGE_DRIVER=local); Kubernetes mounts an emptyDir here.
RUN mkdir -p /data && chown 1000:1000 /data
# uid 1000 is the `node` user of the official image.
USER 1000
EXPOSE 8080
# No curl in alpine: node's own fetch probes the prefixed liveness route.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + (process.env.CHATBOX_PATH_PREFIX || '/chatbox') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/apps/chatbox/src/main.js"]
