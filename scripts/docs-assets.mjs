// Copies Swagger UI's script and styles from node_modules into public/docs/vendor/, so /docs is served entirely by
// the Worker (as static assets) and works with no internet. Run by npm start, npm test, npm run build.
import { copyFileSync, mkdirSync } from "node:fs";

const from = new URL("../node_modules/swagger-ui-dist/", import.meta.url);
const to = new URL("../public/docs/vendor/", import.meta.url);
mkdirSync(to, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) copyFileSync(new URL(file, from), new URL(file, to));
