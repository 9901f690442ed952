// The import graph runs one way (docs/architecture.md): src/lib/ is shared mechanism and never imports a feature,
// src/verify/ or src/billing/; and src/lib/ has no import cycle. `npm run check:imports` (CI) fails otherwise.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.tsx?$/.test(name)) files.push(path);
  }
};
walk(join(ROOT, "src"));

const resolveImport = (from, spec) => {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, join(base, "index.ts")]) {
    if (files.includes(candidate)) return candidate;
  }
  return null;
};

const graph = new Map();
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)].map((m) => m[1]);
  graph.set(file, specs.map((s) => resolveImport(file, s)).filter(Boolean));
}

const rel = (f) => relative(ROOT, f);
const isLib = (f) => rel(f).startsWith("src/lib/");
const problems = [];
for (const [file, deps] of graph) {
  if (!isLib(file)) continue;
  for (const dep of deps) if (!isLib(dep)) problems.push(`${rel(file)} imports ${rel(dep)} (src/lib/ must not import outside src/lib/)`);
}

// Cycles within src/lib/ (depth-first search, reporting each cycle once).
const state = new Map();
const stack = [];
const seen = new Set();
const visit = (file) => {
  state.set(file, "open");
  stack.push(file);
  for (const dep of graph.get(file).filter(isLib)) {
    if (state.get(dep) === "open") {
      const cycle = stack.slice(stack.indexOf(dep)).map(rel);
      const key = [...cycle].sort().join("|");
      if (!seen.has(key)) seen.add(key), problems.push(`import cycle in src/lib/: ${[...cycle, rel(dep)].join(" → ")}`);
    } else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, "done");
};
for (const file of graph.keys()) if (isLib(file) && !state.has(file)) visit(file);

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`imports: ${files.length} files; src/lib/ imports only src/lib/, with no cycle`);
