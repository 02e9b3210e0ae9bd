import { task } from "hardhat/config";

/** EIP-170: the largest deployed bytecode a contract may have. */
export const EIP170_LIMIT = 24_576;

/** The deployable protocol contracts and libraries whose size CI checks. */
const PROTOCOL_SOURCES = /^contracts\/(registry|reputation|escrow|payments|court|randomness|libraries)\//;

task("protocol:sizes", "Deployed bytecode size of every protocol contract, against the EIP-170 limit")
  .addFlag("check", "Exit non-zero when a contract exceeds 24,576 bytes")
  .addFlag("json", "Print JSON instead of a table")
  .setAction(async ({ check, json }: { check: boolean; json: boolean }, hre) => {
    await hre.run("compile", { quiet: true });
    const rows: { contract: string; bytes: number; headroom: number }[] = [];
    for (const name of await hre.artifacts.getAllFullyQualifiedNames()) {
      if (!PROTOCOL_SOURCES.test(name)) continue;
      const artifact = await hre.artifacts.readArtifact(name);
      const bytes = (artifact.deployedBytecode.length - 2) / 2;
      if (bytes < 100) continue; // interfaces and internal-only libraries (a stub at most)
      rows.push({ contract: artifact.contractName, bytes, headroom: EIP170_LIMIT - bytes });
    }
    rows.sort((a, b) => b.bytes - a.bytes);
    if (json) console.log(JSON.stringify(rows, null, 2));
    else {
      console.log("contract".padEnd(24), "bytes".padStart(8), "headroom".padStart(10));
      for (const r of rows)
        console.log(r.contract.padEnd(24), String(r.bytes).padStart(8), String(r.headroom).padStart(10));
    }
    const over = rows.filter((r) => r.bytes > EIP170_LIMIT);
    if (check && over.length > 0) {
      throw new Error(`over the EIP-170 limit of ${EIP170_LIMIT} bytes: ${over.map((r) => r.contract).join(", ")}`);
    }
  });
