import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deployEscrow, taskParams, signAgreement, DAY, SPEC_HASH } from "../test/fixtures/escrow";
import { usd, now } from "../test/fixtures/helpers";

describe("scratch gas", function () {
  it("direct hire and agreement", async function () {
    const f = await loadFixture(deployEscrow);
    const g = async (p: Promise<any>) => Number((await (await p).wait())!.gasUsed);
    for (let round = 0; round < 3; round++) {
      const p = await taskParams(f);
      const a = await g(f.escrow.connect(f.alice).postTask(p));
      const id = await f.escrow.taskCount();
      const b = await g(f.escrow.connect(f.bob).acceptTask(id, p.budget, p.deliveryDuration));
      const c = await g(f.escrow.connect(f.bob).submitWork(id, ethers.id("d"), "ipfs://d"));
      const d = await g(f.escrow.connect(f.alice).approve(id));
      console.log("direct", a, b, c, d, "total", a + b + c + d);
      const t = await now();
      const ag = { clientId: 1n, providerId: 2n, token: await f.usdt.getAddress(), price: usd(100), deliveryDuration: 2n * DAY, reviewPeriod: DAY, parentTaskId: 0n, specHash: SPEC_HASH, nonce: BigInt(round), expiry: t + DAY };
      const sig = await signAgreement(f.escrow, f.bob, ag);
      const a2 = await g(f.escrow.connect(f.alice).hireWithAgreement(ag, ethers.ZeroHash, "ipfs://spec", f.bob.address, sig));
      const id2 = await f.escrow.taskCount();
      const c2 = await g(f.escrow.connect(f.bob).submitWork(id2, ethers.id("d"), "ipfs://d"));
      const d2 = await g(f.escrow.connect(f.alice).approve(id2));
      console.log("agreement", a2, c2, d2, "total", a2 + c2 + d2);
    }
  });
});
