/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false },
  // `npm run dev` beside `PSS_FRONTEND_PORT=5174 scripts/local-stack`: the stack's /env.json
  // (API URL and dev sign-in) comes through; 5173 is one of the stack's allowed origins.
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    proxy: { "/env.json": process.env.PSS_STACK_FRONTEND ?? "http://127.0.0.1:5174" },
  },
  preview: { host: "127.0.0.1", port: 5173 },
  test: { include: ["src/**/*.test.ts", "src/**/*.test.tsx"], environment: "node" },
});
