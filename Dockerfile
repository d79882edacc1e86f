# topicgate: the gateway (`serve`, default) or the demo (`demo`).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
COPY e2e/package.json e2e/
RUN npm ci --no-audit --no-fund
COPY shared shared
COPY server server
COPY client client
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production TOPICGATE_PORT=8080
COPY --from=build /app /app
USER node
EXPOSE 8080
ENTRYPOINT ["node", "server/dist/cli.js"]
CMD ["serve"]
