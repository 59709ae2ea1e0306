/** The BroadcastChannel through which a test holds gated_app.ts's import (no top-level await here). */
export const GATE = "celeriac-test-gated-app";
