# intentgate: production image. Node 24 runs the TypeScript sources directly (type stripping), so the
# build stage only installs production dependencies.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/agent/package.json ./packages/agent/
COPY packages/resource/package.json ./packages/resource/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/app/data
# Required at run time (intentgate serve refuses to start without them):
#   ISSUER=https://auth.example.com         public https URL of this server
#   DATABASE_URL=postgres://user:pass@host:5432/intentgate
#   INTENTGATE_KEK=<32 random bytes, base64>  encrypts signing keys and client secrets at rest
#   INTENTGATE_LEDGER_KEY=/run/secrets/ledger-key.pem   Ed25519 key that signs ledger checkpoints
#   INTENTGATE_ANCHOR_DIR=/anchors           mount storage the database's administrators cannot rewrite
# Optional: ADMIN_TOKEN, TRUST_PROXY=1 behind a reverse proxy, LOG_LEVEL, INTENTGATE_CONFIG, INTENTGATE_ENVIRONMENT.
# `intentgate keys generate` makes the KEK, an admin token and the ledger key; docker-compose.yml runs it all.
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# The server runs the same DPoP and clock checks as the resource middleware, from that package's sources.
COPY packages/resource/src/protocol ./packages/resource/src/protocol
COPY migrations ./migrations
COPY config ./config
# /anchors: where docker-compose.yml mounts the anchor volume (a named volume takes this owner).
RUN mkdir -p /app/data /anchors && chown node:node /app/data /anchors
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "src/cli.ts"]
CMD ["serve"]
