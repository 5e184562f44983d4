import { defineConfig } from "vite";

// JSX is compiled by Vite's built-in esbuild; no plugin needed.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  server: { host: "127.0.0.1" },
});
