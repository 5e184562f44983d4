// http.test.js against examples/users-ts, the users example in TypeScript:
// the same functions under the same names, run by the JavaScript engine.
process.env.CVX_E2E_USERS_APP = "examples/users-ts";
await import("./http.test.js");
