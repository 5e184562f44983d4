// typescript.test.js with the newest `convex` package cvx supports (1.51.0)
// on both sides: tests/fixtures/ts's functions with the package.json of
// tests/fixtures/ts-newest.
process.env.CVX_E2E_TS_PACKAGES = "tests/fixtures/ts-newest";
await import("./typescript.test.js");
