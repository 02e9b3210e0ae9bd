import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { AgentRegistry__factory, MockStablecoin__factory, PayPerUse__factory } from "../../typechain-types";
import { GasTracer, sumOwn, type Frame } from "../../scripts/gas-trace";
import { deployPayPerUse, REQUEST, UNIT_PRICE, serviceToken } from "../fixtures/payPerUse";

/** scripts/gas-trace.ts: the call-frame gas breakdown behind `npm run bench:trace`. */
describe("Gas trace (scripts/gas-trace.ts)", function () {
  async function traced() {
    const f = await loadFixture(deployPayPerUse);
    const tracer = new GasTracer();
    await tracer.nameProxy(await f.payPerUse.getAddress(), "PayPerUse", PayPerUse__factory.createInterface());
    await tracer.nameProxy(await f.registry.getAddress(), "AgentRegistry", AgentRegistry__factory.createInterface());
    tracer.name(await f.usdt.getAddress(), "USDT", MockStablecoin__factory.createInterface());
    return { ...f, tracer };
  }

  const labels = (f: Frame): string[] => [f.label, ...f.children.flatMap(labels)];
  const frames = (f: Frame): Frame[] => [f, ...f.children.flatMap(frames)];

  it("accounts for every unit of a plain token transfer: receipt = intrinsic + execution, no refund", async function () {
    const { usdt, alice, bob, tracer } = await traced();
    const tx = await usdt.connect(alice).transfer(bob.address, 5n);
    const t = await tracer.trace(tx.hash);
    const receipt = (await tx.wait())!;
    const data = ethers.getBytes(tx.data);
    const zeros = data.filter((b) => b === 0).length;
    expect(t.intrinsic).to.equal(21_000 + 4 * zeros + 16 * (data.length - zeros));
    expect(t.receiptGas).to.equal(Number(receipt.gasUsed));
    expect(t.refund).to.equal(0);
    expect(t.root.label).to.equal("USDT.transfer");
    expect(t.root.children).to.deep.equal([]);
    expect(t.root.own).to.equal(t.receiptGas - t.intrinsic);
    // Two warm balance writes after two cold reads (EIP-2929): 2 x 2,900, and 2 x 2,100 for the
    // first reads (an unoptimised build, as under coverage, reads again: 100 a warm read).
    expect(t.root.ops.SSTORE).to.deep.equal({ count: 2, gas: 5_800 });
    const reads = t.root.ops.SLOAD;
    expect(reads.count).to.be.at.least(2);
    expect(reads.gas).to.equal(2 * 2_100 + 100 * (reads.count - 2));
  });

  it("reports the EIP-3529 refund of a cleared slot (4,800) as the gap to the receipt", async function () {
    const { usdt, alice, bob, tracer } = await traced();
    await usdt.connect(alice).approve(bob.address, 7n);
    const tx = await usdt.connect(alice).approve(bob.address, 0n);
    const t = await tracer.trace(tx.hash);
    expect(t.refund).to.equal(4_800);
    expect(t.intrinsic + t.root.inclusive - t.refund).to.equal(Number((await tx.wait())!.gasUsed));
  });

  it("splits a charge into its call frames, named, each frame's gas = its own + its callees'", async function () {
    const { payPerUse, alice, aliceId, bobService, tracer } = await traced();
    const tx = await payPerUse
      .connect(alice)
      .charge(aliceId, bobService, 4n, await serviceToken(payPerUse, bobService), 4n * UNIT_PRICE, REQUEST);
    const t = await tracer.trace(tx.hash);
    expect(labels(t.root)).to.deep.equal([
      "PayPerUse proxy.charge",
      "PayPerUse.charge",
      "AgentRegistry proxy.getServiceTerms",
      "AgentRegistry.getServiceTerms",
      "AgentRegistry proxy.consumeSpend",
      "AgentRegistry.consumeSpend",
      "USDT.balanceOf",
      "USDT.transferFrom",
      "USDT.balanceOf",
      "USDT.transfer",
    ]);
    for (const f of frames(t.root)) {
      expect(f.inclusive, f.label).to.equal(f.own + f.children.reduce((s, c) => s + c.inclusive, 0));
      const opGas = Object.values(f.ops).reduce((s, o) => s + o.gas, 0);
      expect(opGas, f.label).to.equal(f.own);
    }
    expect(t.root.inclusive).to.equal(sumOwn(t.root));
    expect(t.intrinsic + t.root.inclusive - t.refund).to.equal(t.receiptGas);
    expect(t.refund).to.equal(0);
    // The proxy's own work: the implementation slot (cold SLOAD) and the DELEGATECALL (cold account).
    expect(t.root.ops.SLOAD).to.deep.equal({ count: 1, gas: 2_100 });
    expect(t.root.ops.DELEGATECALL.gas).to.equal(2_600);
  });
});
