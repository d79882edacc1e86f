# topicgate: the gateway (`serve`, default) or the demo (`demo`).
# e2e/docker-compose.test.ts builds these stages without a Docker engine and runs the result.

# The server (with the shared package it imports, and the publisher the demo's
# simulated CI publishes through) and the SDK's script-tag bundle, which the
# gateway serves at /topicgate.min.js and the demo pages load.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY publisher/package.json publisher/
COPY server/package.json server/
COPY client/package.json client/
COPY react/package.json react/
COPY e2e/package.json e2e/
RUN npm ci --no-audit --no-fund
COPY shared shared
COPY publisher publisher
COPY server server
COPY client client
RUN npx tsc -b server && npm run build:bundle -w @topicgate/client

# Production dependencies of the server (the publisher's included) and of the
# client workspace (through whose package the server finds the bundle): no
# compilers, no test tools.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY publisher/package.json publisher/
COPY server/package.json server/
COPY client/package.json client/
COPY react/package.json react/
COPY e2e/package.json e2e/
RUN npm ci --omit=dev --workspace topicgate --workspace @topicgate/client --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production TOPICGATE_PORT=8080
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/shared/package.json shared/
COPY --from=build /app/shared/dist shared/dist
COPY --from=build /app/publisher/package.json publisher/
COPY --from=build /app/publisher/dist publisher/dist
COPY --from=build /app/server/package.json server/
COPY --from=build /app/server/dist server/dist
COPY --from=build /app/server/demo-pages server/demo-pages
COPY --from=build /app/client/package.json client/
COPY --from=build /app/client/dist/topicgate.min.js client/dist/
USER node
EXPOSE 8080
ENTRYPOINT ["node", "server/dist/cli.js"]
CMD ["serve"]
