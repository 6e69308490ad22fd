#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Compiles noosphere/ledger/contracts/*.sol with the pinned solc-js and writes one artifact per deployable
// contract to noosphere/ledger/artifacts/<Name>.json: {contractName, abi, bytecode, deployedBytecode,
// sourceHash}. Output is byte-for-byte reproducible (sorted keys, 2-space indent, trailing newline).
//
// sourceHash = sha256 (hex) of the canonical JSON (sorted keys, no whitespace) of
//   {"compiler": <solc version>, "settings": <the standard-JSON settings below>,
//    "sources": {<source unit name>: <sha256 hex of its content>, ...}}
// over every source unit the contract's compilation depends on (its own file plus transitive imports,
// as listed in solc's metadata), so it changes whenever anything that shapes the bytecode changes.
//
// Usage: node scripts/compile_contracts.mjs          compile and (re)write the artifacts
//        node scripts/compile_contracts.mjs --check  compile in memory; exit 1 naming any stale artifact
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONTRACTS_DIR = "noosphere/ledger/contracts";
const ARTIFACTS_DIR = "noosphere/ledger/artifacts";
const NODE_MODULES = path.join(ROOT, "node_modules");
// Import prefixes resolved from node_modules; anything else must be a file under CONTRACTS_DIR.
const PACKAGE_PREFIXES = ["@openzeppelin/contracts/"];

// Cancun: solc 0.8.37 and anvil 1.7.1 both support it (anvil's default hardfork is newer), and
// OpenZeppelin 5.x needs at least cancun (mcopy, pragma ^0.8.24).
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode", "evm.deployedBytecode", "metadata"] } },
};

function fail(message) {
  console.error(`compile_contracts: error: ${message}`);
  process.exit(1);
}

function sha256Hex(data) {
  return createHash("sha256").update(data).digest("hex");
}

/** JSON with object keys sorted recursively (arrays keep their order). */
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}
const canonical = (value) => JSON.stringify(sortKeys(value));
const pretty = (value) => `${JSON.stringify(sortKeys(value), null, 2)}\n`;

let solc;
try {
  solc = createRequire(import.meta.url)("solc");
} catch {
  fail("solc-js is not installed; run `npm ci` (or `make contracts`) at the repository root");
}

function readSources() {
  const dir = path.join(ROOT, CONTRACTS_DIR);
  if (!existsSync(dir)) fail(`no contracts directory at ${CONTRACTS_DIR}`);
  const files = readdirSync(dir).filter((f) => f.endsWith(".sol")).sort();
  if (files.length === 0) fail(`no .sol files in ${CONTRACTS_DIR}`);
  const sources = {};
  for (const f of files) {
    sources[`${CONTRACTS_DIR}/${f}`] = { content: readFileSync(path.join(dir, f), "utf8") };
  }
  return sources;
}

// Every imported file, keyed by source unit name, so sourceHash can cover it.
const imported = {};

function findImports(unitName) {
  if (!PACKAGE_PREFIXES.some((p) => unitName.startsWith(p))) {
    return { error: `import "${unitName}" is neither under ${CONTRACTS_DIR} nor one of ${PACKAGE_PREFIXES.join(", ")}` };
  }
  const file = path.join(NODE_MODULES, unitName);
  if (!path.resolve(file).startsWith(NODE_MODULES + path.sep)) return { error: `import "${unitName}" escapes node_modules` };
  if (!existsSync(file)) return { error: `import "${unitName}" not found in node_modules (run npm ci)` };
  const content = readFileSync(file, "utf8");
  imported[unitName] = content;
  return { contents: content };
}

function compile() {
  const sources = readSources();
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors ?? [];
  const errors = diagnostics.filter((d) => d.severity === "error");
  for (const d of diagnostics.filter((d) => d.severity !== "error")) console.warn(d.formattedMessage.trimEnd());
  if (errors.length > 0) {
    for (const d of errors) console.error(d.formattedMessage.trimEnd());
    fail(`solc ${solc.version()} reported ${errors.length} error(s); no artifacts written`);
  }

  const contents = { ...imported };
  for (const [name, { content }] of Object.entries(sources)) contents[name] = content;
  const artifacts = {};
  for (const unitName of Object.keys(sources)) {
    for (const [contractName, c] of Object.entries(output.contracts?.[unitName] ?? {})) {
      if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
      if (artifacts[contractName]) fail(`two contracts named ${contractName}; artifact names must be unique`);
      if (Object.keys(c.evm.bytecode.linkReferences ?? {}).length > 0) {
        fail(`${contractName} needs linked libraries, which this build does not support`);
      }
      const metadata = JSON.parse(c.metadata);
      const deps = {};
      for (const dep of Object.keys(metadata.sources).sort()) {
        if (contents[dep] === undefined) fail(`internal: no content recorded for ${dep}`);
        deps[dep] = sha256Hex(contents[dep]);
      }
      const bundle = { compiler: solc.version(), settings: SETTINGS, sources: deps };
      artifacts[contractName] = {
        contractName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
        sourceHash: sha256Hex(canonical(bundle)),
      };
    }
  }
  if (Object.keys(artifacts).length === 0) fail("no deployable contracts found");
  return artifacts;
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) fail(`unknown argument(s): ${unknown.join(" ")} (usage: compile_contracts.mjs [--check])`);
  const check = args.includes("--check");

  const artifacts = compile();
  const outDir = path.join(ROOT, ARTIFACTS_DIR);
  const rendered = Object.fromEntries(Object.entries(artifacts).map(([n, a]) => [`${n}.json`, pretty(a)]));
  const onDisk = existsSync(outDir) ? readdirSync(outDir).filter((f) => f.endsWith(".json")) : [];

  if (check) {
    const stale = [];
    for (const [file, text] of Object.entries(rendered)) {
      const p = path.join(outDir, file);
      if (!existsSync(p)) stale.push(`${ARTIFACTS_DIR}/${file} is missing`);
      else if (readFileSync(p, "utf8") !== text) stale.push(`${ARTIFACTS_DIR}/${file} is stale`);
    }
    for (const file of onDisk) {
      if (!(file in rendered)) stale.push(`${ARTIFACTS_DIR}/${file} has no contract behind it`);
    }
    if (stale.length > 0) {
      for (const s of stale) console.error(`compile_contracts: ${s}`);
      fail("contract artifacts are out of date; run `make contracts` and commit the result");
    }
    console.log(`contract artifacts are up to date (${Object.keys(rendered).length} contracts, solc ${solc.version()})`);
    return;
  }

  mkdirSync(outDir, { recursive: true });
  for (const file of onDisk) {
    if (!(file in rendered)) {
      unlinkSync(path.join(outDir, file));
      console.log(`removed ${ARTIFACTS_DIR}/${file} (no contract behind it)`);
    }
  }
  for (const [file, text] of Object.entries(rendered)) {
    const p = path.join(outDir, file);
    const changed = !existsSync(p) || readFileSync(p, "utf8") !== text;
    if (changed) writeFileSync(p, text);
    console.log(`${changed ? "wrote" : "unchanged"} ${ARTIFACTS_DIR}/${file}`);
  }
}

main();
