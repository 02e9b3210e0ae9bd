import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { MockReentrantToken } from "../../typechain-types";
import { deployPayPerUse, HOUR, DAY, REQUEST } from "../fixtures/payPerUse";
import { now } from "../fixtures/helpers";

/**
 * Every value-moving PayPerUse function is `nonReentrant`: a token that calls back into PayPerUse
 * from inside a transfer is refused with `ReentrancyGuardReentrantCall`, whichever function it
 * tries, and the outer payment completes exactly once.
 */
describe("PayPerUse re-entrancy guard", function () {
  async function fixture() {
    const f = await deployPayPerUse();
    const token = (await ethers.deployContract("MockReentrantToken")) as unknown as MockReentrantToken;
    const tokenAddress = await token.getAddress();
    await f.payPerUse.setToken(tokenAddress, true);
    await f.registry.connect(f.bob).listService(f.bobId, ethers.id("reentrant"), 0, tokenAddress, 1_000n, "https://x");
    const serviceId = await f.registry.serviceCount();
    await token.mint(f.alice.address, 10n ** 12n);
    await token.connect(f.alice).approve(await f.payPerUse.getAddress(), ethers.MaxUint256);
    return { ...f, token, tokenAddress, serviceId };
  }

  const GUARD = ethers.id("ReentrancyGuardReentrantCall()").slice(0, 10);

  it("refuses every nonReentrant function from inside a charge's token transfer", async function () {
    const f = await loadFixture(fixture);
    const ppu = f.payPerUse;
    const t = await now();
    const charge = {
      payerId: f.aliceId,
      payer: f.alice.address,
      serviceId: f.serviceId,
      token: f.tokenAddress,
      units: 1n,
      amount: 1_000n,
      requestRef: REQUEST,
      nonce: 1n,
      validAfter: 0n,
      validBefore: t + HOUR,
    };
    const upTo = { ...charge, maxAmount: 1_000n };
    delete (upTo as Partial<typeof charge>).units;
    delete (upTo as Partial<typeof charge>).amount;
    const voucher = { sessionId: 1n, amount: 1n, calls: 1n };
    const calls: [string, string][] = [
      [
        "charge",
        ppu.interface.encodeFunctionData("charge", [f.aliceId, f.serviceId, 1n, f.tokenAddress, 1_000n, REQUEST]),
      ],
      ["submitCharge", ppu.interface.encodeFunctionData("submitCharge", [charge, "0x", 0, "0x"])],
      ["settleUpTo", ppu.interface.encodeFunctionData("settleUpTo", [upTo, "0x", 1n, 0, "0x"])],
      ["refund", ppu.interface.encodeFunctionData("refund", [1n, 1n])],
      [
        "openSession",
        ppu.interface.encodeFunctionData("openSession", [
          f.aliceId,
          f.bobId,
          f.tokenAddress,
          1n,
          t + DAY,
          f.alice.address,
        ]),
      ],
      ["topUp", ppu.interface.encodeFunctionData("topUp", [1n, 1n, 0n])],
      ["redeem", ppu.interface.encodeFunctionData("redeem", [voucher, "0x"])],
      ["redeemMany", ppu.interface.encodeFunctionData("redeemMany", [[voucher], ["0x"]])],
      ["settleSession", ppu.interface.encodeFunctionData("settleSession", [1n])],
      ["withdraw", ppu.interface.encodeFunctionData("withdraw", [f.tokenAddress, f.alice.address])],
      ["sweepFees", ppu.interface.encodeFunctionData("sweepFees", [f.tokenAddress])],
      ["syncReputation", ppu.interface.encodeFunctionData("syncReputation", [f.aliceId, f.bobId, f.tokenAddress])],
    ];
    let receipts = 0n;
    for (const [name, data] of calls) {
      await f.token.setReentry(await ppu.getAddress(), data);
      const before = await f.token.balanceOf(f.bob.address);
      await expect(ppu.connect(f.alice).charge(f.aliceId, f.serviceId, 1n, f.tokenAddress, 1_000n, REQUEST), name)
        .to.emit(f.token, "ReentryAttempted")
        .withArgs(await ppu.getAddress(), false, GUARD);
      receipts += 1n;
      // The outer charge paid exactly once: 1,000 less the 1% fee (10).
      expect(await f.token.balanceOf(f.bob.address), name).to.equal(before + 990n);
      expect(await ppu.receiptCount(), name).to.equal(receipts);
    }
    expect(await ppu.accruedFees(f.tokenAddress)).to.equal(10n * receipts);
    expect(await f.token.balanceOf(await ppu.getAddress())).to.equal(10n * receipts);
  });
});
