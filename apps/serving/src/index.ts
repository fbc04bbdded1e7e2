// An app, not a library: nothing imports it; its entry point is main.ts (built by build.mjs).
export {};
