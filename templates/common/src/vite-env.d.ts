/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The cvx server (default http://127.0.0.1:3210). */
  readonly VITE_CONVEX_URL?: string;
  /** Development sign-in: a URL answering ?sub=NAME with a token (README.md, "Signing in"). */
  readonly VITE_AUTH_TOKEN_URL?: string;
}
