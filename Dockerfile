# The controller image: the compiled build on Node 20, no TypeScript at run time (tsx would add
# ~85 MB of RSS). Build: docker build -t <registry>/aegis:<tag> .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The same uid the Deployment's securityContext runs as.
USER 65532:65532
ENTRYPOINT ["node", "dist/cli/main.js"]
