import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deployEscrow, taskParams } from "../test/fixtures/escrow";

async function frames(hash: string) {
  const tr: any = await network.provider.send("debug_traceTransaction", [hash, { disableStorage: true, disableMemory: true, disableStack: false }]);
  const logs = tr.structLogs;
  // gas at entry of each depth-2+ frame: report CALL/STATICCALL/DELEGATECALL targets with gas used
  const stack: { op: string; gasStart: number; idx: number; to: string }[] = [];
  const out: string[] = [];
  let sstores = 0, sloads = 0, logsCost = 0; const d4: Record<string, number> = {};
  for (let i = 0; i < logs.length; i++) {
    const l = logs[i];
    if (["CALL", "STATICCALL", "DELEGATECALL"].includes(l.op)) {
      const to = "0x" + l.stack[l.stack.length - 2].slice(-40);
      stack.push({ op: l.op, gasStart: l.gas, idx: i, to });
    }
    if (l.op === "SSTORE" && l.depth === 2) sstores += l.gasCost;
    if (l.depth === 4 && (l.op === "SSTORE" || l.op === "SLOAD" || l.op.startsWith("LOG"))) d4[l.op] = (d4[l.op] ?? 0) + l.gasCost;
    if (l.op.startsWith("LOG") && l.depth === 2) logsCost += l.gasCost;
    if (i > 0 && l.depth < logs[i - 1].depth) {
      const f = stack.pop()!;
      out.push(`${"  ".repeat(logs[i - 1].depth - 1)}${f.op} ${f.to.slice(0, 10)} used ${f.gasStart - l.gas} (depth ${logs[i - 1].depth})`);
    }
  }
  console.log(out.join("\n"));
  console.log("depth4", JSON.stringify(d4));
  console.log("escrow-level sstore", sstores, "logs", logsCost, "total", tr.gas);
}

describe("trace", function () {
  it("approve", async function () {
    const f = await loadFixture(deployEscrow);
    let hashes: string[] = [];
    for (let r = 0; r < 3; r++) {
      const p = await taskParams(f);
      const h1 = (await f.escrow.connect(f.alice).postTask(p)).hash;
      const id = await f.escrow.taskCount();
      const h2 = (await f.escrow.connect(f.bob).acceptTask(id, p.budget, p.deliveryDuration)).hash;
      const h3 = (await f.escrow.connect(f.bob).submitWork(id, ethers.id("d"), "ipfs://d")).hash;
      const h4 = (await f.escrow.connect(f.alice).approve(id)).hash;
      hashes = [h1, h2, h3, h4];
    }
    console.log("addresses: escrow", await f.escrow.getAddress(), "registry", await f.registry.getAddress(), "rep", await f.reputation.getAddress(), "usdt", await f.usdt.getAddress());
    for (const h of hashes.slice(3)) { console.log("----", h); await frames(h); }
  });
});
