import { defaultClientConditions, defaultServerConditions } from "vite";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The built app is committed under server/internal/web/dist and embedded in the
// server binary, so `go build` needs no Node step. Builds are reproducible:
// scripts/check-dist.mjs rebuilds into a temporary directory and compares.
// `npm run dev` serves the app with hot reload and sends the API and Socket.IO to a
// running taskwire-server (TASKWIRE_URL, default http://127.0.0.1:8080).
const backend = process.env["TASKWIRE_URL"] ?? "http://127.0.0.1:8080";

// @taskwire/client (packages/client) is built from its sources: no build of the
// package is needed before the app's.
const source = "taskwire-source";

export default defineConfig({
  base: "/",
  resolve: { conditions: [source, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [source, ...defaultServerConditions] } },
  server: {
    proxy: {
      "/api": backend,
      "/socket.io": { target: backend, ws: true },
    },
  },
  build: {
    outDir: "../server/internal/web/dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: true,
    // Two pages, each its own bundle: the app (/) and the operator dashboard
    // (/admin/, served from admin/index.html).
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL("index.html", import.meta.url)),
        admin: fileURLToPath(new URL("admin/index.html", import.meta.url)),
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
