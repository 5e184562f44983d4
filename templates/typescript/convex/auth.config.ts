// Who may sign in: the OpenID Connect issuer whose tokens the server
// accepts, from the deployment's environment variables
// (`cvx env set AUTH_ISSUER https://...`; see README.md, "Signing in").
// Without AUTH_ISSUER there is no provider and every caller is anonymous.
// This file is read when the app is deployed: after changing a variable,
// save a file in convex/ so that `cvx dev` redeploys.

// The deployment's variables (the page's packages bring no Node.js types).
declare const process: { env: Record<string, string | undefined> };

export default {
  providers: process.env.AUTH_ISSUER
    ? [{ domain: process.env.AUTH_ISSUER, applicationID: process.env.AUTH_APPLICATION_ID ?? "convex" }]
    : [],
};
