// Fails when the Solidity coverage written by `hardhat coverage` falls below the thresholds.
// Usage: node scripts/check-coverage.js [minLinesPct] [minBranchesPct]
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const [minLines, minBranches] = [Number(process.argv[2] ?? 95), Number(process.argv[3] ?? 90)];
const summary = JSON.parse(readFileSync(join(__dirname, "..", "coverage", "coverage-summary.json"), "utf8"));
const failures = [];
for (const [file, s] of Object.entries(summary)) {
  const name = file === "total" ? "all contracts" : file.replace(/^.*contracts\//, "contracts/");
  console.log(
    `${name.padEnd(40)} lines ${String(s.lines.pct).padStart(6)}%  branches ${String(s.branches.pct).padStart(6)}%`,
  );
  if (s.lines.pct < minLines) failures.push(`${name}: lines ${s.lines.pct}% < ${minLines}%`);
  if (s.branches.pct < minBranches) failures.push(`${name}: branches ${s.branches.pct}% < ${minBranches}%`);
}
if (failures.length > 0) {
  console.error(`Coverage below the threshold:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
