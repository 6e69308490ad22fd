#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Compiles the TEST-ONLY contracts next to this file (tests/integration/contracts/*.sol) with the
// pinned solc-js and the production settings of scripts/compile_contracts.mjs, and prints
// {"<Name>": {"abi": [...], "bytecode": "0x..."}} on stdout. Nothing is written to disk.
// Imports: "./X.sol" (this directory) and "@openzeppelin/contracts/..." (node_modules).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../..");
const NODE_MODULES = path.join(ROOT, "node_modules");
const UNIT_PREFIX = "tests/integration/contracts/";
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

function fail(message) {
  console.error(`compile test contracts: ${message}`);
  process.exit(1);
}

let solc;
try {
  solc = createRequire(path.join(ROOT, "package.json"))("solc");
} catch {
  fail("solc-js is not installed; run `npm ci` (or `make install`) at the repository root");
}

const sources = {};
for (const f of readdirSync(HERE).filter((f) => f.endsWith(".sol")).sort()) {
  sources[UNIT_PREFIX + f] = { content: readFileSync(path.join(HERE, f), "utf8") };
}

function findImports(unitName) {
  const file = unitName.startsWith("@openzeppelin/contracts/") ? path.join(NODE_MODULES, unitName) : null;
  if (file === null || !existsSync(file)) return { error: `import "${unitName}" not found` };
  return { contents: readFileSync(file, "utf8") };
}

const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors ?? []).filter((d) => d.severity === "error");
if (errors.length > 0) fail(errors.map((d) => d.formattedMessage.trimEnd()).join("\n"));

const result = {};
for (const unit of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts?.[unit] ?? {})) {
    if (c.evm.bytecode.object) result[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
}
process.stdout.write(`${JSON.stringify(result)}\n`);
