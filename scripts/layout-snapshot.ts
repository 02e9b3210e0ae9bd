/**
 * Writes the court's storage layout snapshot (test/upgrade/layouts/EvaluatorStaking.json) from
 * the current build: `npm run layout:snapshot`. Run it on purpose, once an upgrade is accepted
 * (the layout it snapshots is what the next upgrade must extend); it prints what the old snapshot
 * would have rejected.
 */
import fs from "fs";
import path from "path";
import hre from "hardhat";
import {
  COURT_LAYOUT,
  compareLayouts,
  readNamespaceLayout,
  readSnapshot,
  writeSnapshot,
} from "../test/fixtures/storageLayout";

async function main() {
  const layout = await readNamespaceLayout(hre, COURT_LAYOUT.harness, COURT_LAYOUT.variable);
  const file = path.relative(process.cwd(), COURT_LAYOUT.snapshot);
  if (fs.existsSync(COURT_LAYOUT.snapshot)) {
    const errors = compareLayouts(readSnapshot(COURT_LAYOUT.snapshot), layout);
    if (errors.length > 0) console.log(`Not append-only against the old ${file}:\n  ${errors.join("\n  ")}`);
  }
  writeSnapshot(COURT_LAYOUT.snapshot, layout);
  console.log(`${file}: ${layout.struct} at ${layout.namespace}, ${layout.members.length} members`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
