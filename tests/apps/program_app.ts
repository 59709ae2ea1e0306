/** A program, not an app module (as examples/demo.ts): it imports worker.ts and exports no app. */

import { Worker } from "../../worker.ts";
import { add } from "./worker_app.ts";

await Promise.resolve(`${Worker.name} ${add.name}`);
