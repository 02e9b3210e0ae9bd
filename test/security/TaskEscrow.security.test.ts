import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  ARBITRATION_FEE_BPS,
  CAPABILITY,
  DAY,
  MIN_BUDGET,
  Mode,
  PROTOCOL_FEE_BPS,
  Ruling,
  SPEC_HASH,
  Status,
  deployEscrow,
  post,
  postAccepted,
  postSubmitted,
  signAgreement,
  taskParams,
  type AgreementValue,
  type EscrowFixture,
} from "../fixtures/escrow";
import { malleate, now, signAgentWallet, usd } from "../fixtures/helpers";
import {
  IERC20__factory,
  MockBlacklistToken__factory,
  MockERC1271Wallet__factory,
  MockFeeOnTransferToken__factory,
  MockReentrantToken__factory,
  MockRevertingReceiver__factory,
  type TaskEscrow,
} from "../../typechain-types";

// ---------------------------------------------------------------------- constants

type Over = Partial<Parameters<TaskEscrow["postTask"]>[0]>;

const BPS = 10_000n;
const PRICE = usd(100);
const FEE = (PRICE * PROTOCOL_FEE_BPS) / BPS;
const DEPOSIT = (PRICE * ARBITRATION_FEE_BPS) / BPS;
const SPEC_URI = "ipfs://spec";
const DELIVERABLE = ethers.id("deliverable");
const REASON = ethers.id("reason");

// ---------------------------------------------------------------------- helpers

async function deadlineOf(f: EscrowFixture, id: bigint) {
  return (await f.escrow.getTask(id)).deadline;
}

async function statusOf(f: EscrowFixture, id: bigint) {
  return (await f.escrow.getTask(id)).status;
}

async function postRejected(f: EscrowFixture, over: Over = {}) {
  const id = await postSubmitted(f, over);
  await f.escrow.connect(f.alice).reject(id, REASON);
  return id;
}

async function postDisputed(f: EscrowFixture, over: Over = {}) {
  const id = await postRejected(f, over);
  await f.escrow.connect(f.bob).raiseDispute(id);
  return id;
}

async function postInArbitration(f: EscrowFixture, over: Over = {}) {
  const id = await postDisputed(f, over);
  await f.escrow.connect(f.alice).payDisputeDeposit(id);
  return id;
}

/** Allow-lists `token` at the fixture's minimum and funds alice and bob with approvals. */
async function allowAndFund(
  f: EscrowFixture,
  token: { getAddress(): Promise<string>; mint(to: string, amount: bigint): Promise<unknown> },
  holders: HardhatEthersSigner[],
) {
  const tokenAddr = await token.getAddress();
  await f.escrow.setToken(tokenAddr, MIN_BUDGET);
  const erc20 = IERC20__factory.connect(tokenAddr, f.admin);
  for (const who of holders) {
    await token.mint(who.address, usd(1_000_000));
    await erc20.connect(who).approve(await f.escrow.getAddress(), ethers.MaxUint256);
  }
  return tokenAddr;
}

// ---------------------------------------------------------------------- fixtures

async function withReentrantToken() {
  const f = await deployEscrow();
  const rt = await new MockReentrantToken__factory(f.admin).deploy();
  const rtAddr = await allowAndFund(f, rt, [f.alice, f.bob]);
  const guardError = f.escrow.interface.getError("ReentrancyGuardReentrantCall")!.selector;
  return { ...f, rt, rtAddr, guardError };
}

async function withFeeOnTransferToken() {
  const f = await deployEscrow();
  const fot = await new MockFeeOnTransferToken__factory(f.admin).deploy(100); // burns 1%
  const fotAddr = await allowAndFund(f, fot, [f.alice, f.bob]);
  const noFee = await new MockFeeOnTransferToken__factory(f.admin).deploy(0);
  const noFeeAddr = await allowAndFund(f, noFee, [f.alice, f.bob]);
  return { ...f, fot, fotAddr, noFee, noFeeAddr };
}

async function withBlacklist() {
  const f = await deployEscrow();
  const blk = await new MockBlacklistToken__factory(f.admin).deploy();
  const blkAddr = await allowAndFund(f, blk, [f.alice, f.bob]);
  return { ...f, blk, blkAddr };
}

/** Agreement terms bob (#2) offers alice (#1): 100 USDT, nonce 1, valid a day. */
async function agreement(f: EscrowFixture, over: Partial<AgreementValue> = {}): Promise<AgreementValue> {
  return {
    clientId: f.aliceId,
    providerId: f.bobId,
    token: await f.usdt.getAddress(),
    price: PRICE,
    deliveryDuration: 2n * DAY,
    reviewPeriod: DAY,
    parentTaskId: 0n,
    specHash: SPEC_HASH,
    nonce: 1n,
    expiry: (await now()) + DAY,
    ...over,
  };
}

function hire(f: EscrowFixture, a: AgreementValue, signer: string, signature: string) {
  return f.escrow.connect(f.alice).hireWithAgreement(a, CAPABILITY, SPEC_URI, signer, signature);
}

/**
 * Alice's agent (#1) gives `operator` a USDT limit of 100 per transaction and 250 per rolling
 * day; the operator holds USDT and approved the escrow (deployEscrow).
 */
async function withOperator() {
  const f = await deployEscrow();
  const usdtAddr = await f.usdt.getAddress();
  const terms = { expiry: (await now()) + 30n * DAY, minScoreBps: 0, allowListOnly: false };
  await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, terms);
  const limit = { perTxCap: usd(100), periodCap: usd(250), period: DAY, rolling: true };
  await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, usdtAddr, limit);
  return { ...f, usdtAddr };
}

/**
 * Checks the escrow's money rule for `token`: its balance equals the amounts of live tasks, the
 * dispute deposits it holds, every credit and the unswept fees.
 */
async function expectConservation(f: EscrowFixture, token: string) {
  const erc20 = IERC20__factory.connect(token, f.admin);
  let live = 0n;
  let deposits = 0n;
  const count = await f.escrow.taskCount();
  for (let id = 1n; id <= count; id++) {
    const t = await f.escrow.getTask(id);
    if (t.token !== token || t.status >= BigInt(Status.Completed)) continue;
    live += t.amount;
    if (t.status === BigInt(Status.Disputed) || t.status === BigInt(Status.Arbitration)) {
      deposits += (await f.escrow.getDispute(id)).deposit;
    }
  }
  let credits = 0n;
  const accounts = [...(await ethers.getSigners()).map((s) => s.address), await f.arbitrator.getAddress()];
  for (const account of accounts) credits += await f.escrow.creditOf(token, account);
  const fees = await f.escrow.accruedFees(token);
  expect(await erc20.balanceOf(await f.escrow.getAddress())).to.equal(live + deposits + credits + fees);
  return { live, deposits, credits, fees };
}

// ---------------------------------------------------------------------- tests

describe("TaskEscrow security", function () {
  // ================================================================== reentrancy
  describe("re-entering token", function () {
    it("a provider payout re-entering approve is refused by the guard: paid once, exactly", async function () {
      const f = await loadFixture(withReentrantToken);
      const id = await postSubmitted(f, { token: f.rtAddr });
      await f.rt.setReentry(await f.escrow.getAddress(), f.escrow.interface.encodeFunctionData("approve", [id]));
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.rt, [f.alice, f.bob, f.escrow], [0n, PRICE - FEE, -(PRICE - FEE)]);
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.escrow.getAddress(), false, f.guardError);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
      expect(await f.rt.lastReentrySuccess()).to.equal(false);
      expect(await f.rt.lastReentryReturnData()).to.equal(f.guardError);
      expect(await statusOf(f, id)).to.equal(Status.Completed);
      expect(await f.escrow.accruedFees(f.rtAddr)).to.equal(FEE);
      expect(await f.rt.balanceOf(await f.escrow.getAddress())).to.equal(FEE);
    });

    it("a payout re-entering timeout on the same task is refused: paid once, exactly", async function () {
      const f = await loadFixture(withReentrantToken);
      const id = await postSubmitted(f, { token: f.rtAddr });
      await time.increaseTo((await deadlineOf(f, id)) + 1n);
      await f.rt.setReentry(await f.escrow.getAddress(), f.escrow.interface.encodeFunctionData("timeout", [id]));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(
        f.rt,
        [f.alice, f.bob, f.escrow, f.stranger],
        [0n, PRICE - FEE, -(PRICE - FEE), 0n],
      );
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.escrow.getAddress(), false, f.guardError);
      expect(await statusOf(f, id)).to.equal(Status.Completed);
    });

    it("a refund re-entering timeout on another due task is refused; that task settles later, once", async function () {
      const f = await loadFixture(withReentrantToken);
      const a = await postAccepted(f, { token: f.rtAddr });
      const b = await postAccepted(f, { token: f.rtAddr });
      await time.increaseTo((await deadlineOf(f, b)) + 1n);
      await f.rt.setReentry(await f.escrow.getAddress(), f.escrow.interface.encodeFunctionData("timeout", [b]));
      const tx = await f.escrow.connect(f.stranger).timeout(a);
      await expect(tx).to.changeTokenBalances(f.rt, [f.alice, f.escrow], [PRICE, -PRICE]);
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.escrow.getAddress(), false, f.guardError);
      expect(await statusOf(f, a)).to.equal(Status.Refunded);
      expect(await statusOf(f, b)).to.equal(Status.Accepted);
      await expect(f.escrow.connect(f.stranger).timeout(b)).to.changeTokenBalances(
        f.rt,
        [f.alice, f.escrow],
        [PRICE, -PRICE],
      );
      expect(await f.rt.balanceOf(await f.escrow.getAddress())).to.equal(0n);
    });

    it("a payout re-entering withdraw is refused by the guard", async function () {
      const f = await loadFixture(withReentrantToken);
      const id = await postSubmitted(f, { token: f.rtAddr });
      await f.rt.setReentry(
        await f.escrow.getAddress(),
        f.escrow.interface.encodeFunctionData("withdraw", [f.rtAddr, f.stranger.address]),
      );
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.rt, [f.bob, f.stranger, f.escrow], [PRICE - FEE, 0n, -(PRICE - FEE)]);
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.escrow.getAddress(), false, f.guardError);
    });

    it("a fee sweep re-entering sweepFees pays the treasury once", async function () {
      const f = await loadFixture(withReentrantToken);
      await f.escrow.connect(f.alice).approve(await postSubmitted(f, { token: f.rtAddr }));
      await f.rt.setReentry(
        await f.escrow.getAddress(),
        f.escrow.interface.encodeFunctionData("sweepFees", [f.rtAddr]),
      );
      const tx = await f.escrow.connect(f.stranger).sweepFees(f.rtAddr);
      await expect(tx).to.changeTokenBalances(f.rt, [f.treasury, f.escrow], [FEE, -FEE]);
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.escrow.getAddress(), false, f.guardError);
      await expect(tx).to.emit(f.escrow, "FeesSwept").withArgs(f.rtAddr, f.treasury.address, FEE);
      expect(await f.escrow.accruedFees(f.rtAddr)).to.equal(0n);
    });

    it("a dispute payout re-entering rule is refused: the ruling pays once", async function () {
      const f = await loadFixture(withReentrantToken);
      const id = await postInArbitration(f, { token: f.rtAddr });
      const { disputeId } = await f.escrow.getDispute(id);
      // The re-entry comes from the token, which is not the arbitrator; the guard stops it first.
      await f.rt.setReentry(
        await f.arbitrator.getAddress(),
        f.arbitrator.interface.encodeFunctionData("giveRuling", [disputeId, Ruling.P100]),
      );
      const tx = await f.arbitrator.giveRuling(disputeId, Ruling.P0);
      await expect(tx).to.changeTokenBalances(
        f.rt,
        [f.alice, f.bob, f.escrow],
        [PRICE + DEPOSIT, 0n, -(PRICE + DEPOSIT)],
      );
      await expect(tx)
        .to.emit(f.rt, "ReentryAttempted")
        .withArgs(await f.arbitrator.getAddress(), false, f.guardError);
      expect(await statusOf(f, id)).to.equal(Status.Resolved);
    });
  });

  // ================================================================== fee-on-transfer
  describe("fee-on-transfer token", function () {
    it("is rejected at posting with TaskEscrowTransferMismatch; nothing is stored or moved", async function () {
      const f = await loadFixture(withFeeOnTransferToken);
      const params = await taskParams(f, { token: f.fotAddr });
      await expect(f.escrow.connect(f.alice).postTask(params))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTransferMismatch")
        .withArgs(f.fotAddr, PRICE, PRICE - PRICE / 100n);
      expect(await f.escrow.taskCount()).to.equal(0n);
      expect(await f.fot.balanceOf(await f.escrow.getAddress())).to.equal(0n);
    });

    it("is rejected in a signed agreement too", async function () {
      const f = await loadFixture(withFeeOnTransferToken);
      const a = await agreement(f, { token: f.fotAddr });
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTransferMismatch")
        .withArgs(f.fotAddr, PRICE, PRICE - PRICE / 100n);
      expect(await f.escrow.nonceUsed(f.bobId, 1n)).to.equal(false);
    });

    it("the same token with a zero fee is accepted (control)", async function () {
      const f = await loadFixture(withFeeOnTransferToken);
      await expect(
        f.escrow.connect(f.alice).postTask(await taskParams(f, { token: f.noFeeAddr })),
      ).to.changeTokenBalances(f.noFee, [f.alice, f.escrow], [-PRICE, PRICE]);
    });
  });

  // ================================================================== failing recipients
  describe("failing recipients", function () {
    it("a blacklisted provider does not block approval: its share is credited, the client is unaffected", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.blk, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      await expect(tx)
        .to.emit(f.escrow, "PaymentCredited")
        .withArgs(f.blkAddr, f.bob.address, PRICE - FEE);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
      expect(await statusOf(f, id)).to.equal(Status.Completed);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(PRICE - FEE);
      expect(await f.escrow.creditOf(f.blkAddr, f.alice.address)).to.equal(0n);
      expect(await f.escrow.accruedFees(f.blkAddr)).to.equal(FEE);
      // The provider later takes its money out to another address.
      await expect(f.escrow.connect(f.bob).withdraw(f.blkAddr, f.dave.address)).to.changeTokenBalances(
        f.blk,
        [f.bob, f.dave, f.escrow],
        [0n, PRICE - FEE, -(PRICE - FEE)],
      );
      expect(await f.blk.balanceOf(await f.escrow.getAddress())).to.equal(FEE);
    });

    it("a blacklisted client does not block a split ruling: its part is credited, the provider is paid", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postInArbitration(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.alice.address, true);
      const share = PRICE / 2n;
      const fee = (share * PROTOCOL_FEE_BPS) / BPS;
      const tx = await f.arbitrator.giveRuling((await f.escrow.getDispute(id)).disputeId, Ruling.P50);
      await expect(tx).to.changeTokenBalances(
        f.blk,
        [f.alice, f.bob, f.escrow],
        [0n, share - fee + DEPOSIT / 2n, -(share - fee + DEPOSIT / 2n)],
      );
      await expect(tx)
        .to.emit(f.escrow, "PaymentCredited")
        .withArgs(f.blkAddr, f.alice.address, PRICE - share + DEPOSIT / 2n);
      expect(await f.escrow.creditOf(f.blkAddr, f.alice.address)).to.equal(PRICE - share + DEPOSIT / 2n);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(0n);
      await expectConservation(f, f.blkAddr);
    });

    it("a blacklisted client does not block a refund: it is credited", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postRejected(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.alice.address, true);
      const tx = await f.escrow.connect(f.bob).agreeRefund(id);
      await expect(tx).to.changeTokenBalances(f.blk, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      await expect(tx).to.emit(f.escrow, "PaymentCredited").withArgs(f.blkAddr, f.alice.address, PRICE);
      expect(await statusOf(f, id)).to.equal(Status.Refunded);
    });

    it("a blacklisted agent wallet is credited under the wallet's address", async function () {
      const f = await loadFixture(withBlacklist);
      const wallet = (await ethers.getSigners())[11];
      const id = await postSubmitted(f, { token: f.blkAddr });
      const deadline = (await now()) + 100n;
      const signature = await signAgentWallet(f.registry, wallet, f.bobId, wallet.address, f.bob.address, deadline);
      await f.registry.connect(f.bob).setAgentWallet(f.bobId, wallet.address, deadline, signature);
      await f.blk.setBlacklisted(wallet.address, true);
      await expect(f.escrow.connect(f.alice).approve(id))
        .to.emit(f.escrow, "PaymentCredited")
        .withArgs(f.blkAddr, wallet.address, PRICE - FEE);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(0n);
      await expect(f.escrow.connect(wallet).withdraw(f.blkAddr, f.bob.address)).to.changeTokenBalance(
        f.blk,
        f.bob,
        PRICE - FEE,
      );
    });

    it("an arbitrator the token refuses does not block the client's deposit: its fee is credited", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postDisputed(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(await f.arbitrator.getAddress(), true);
      const tx = await f.escrow.connect(f.alice).payDisputeDeposit(id);
      await expect(tx).to.changeTokenBalances(f.blk, [f.alice, f.arbitrator, f.escrow], [-DEPOSIT, 0n, DEPOSIT]);
      await expect(tx)
        .to.emit(f.escrow, "PaymentCredited")
        .withArgs(f.blkAddr, await f.arbitrator.getAddress(), DEPOSIT);
      expect(await statusOf(f, id)).to.equal(Status.Arbitration);
      await expectConservation(f, f.blkAddr);
    });

    it("a contract recipient that refuses ETH and ERC-721 still receives ERC-20 payouts directly", async function () {
      // MockRevertingReceiver only refuses ETH and ERC-721 transfers; an ERC-20 transfer to it
      // does not call it, so nothing needs to be credited.
      const f = await loadFixture(deployEscrow);
      const receiver = await new MockRevertingReceiver__factory(f.admin).deploy();
      const id = await postSubmitted(f);
      // Bob hands his agent to the contract (plain transferFrom: no ERC-721 receiver hook).
      await f.registry.connect(f.bob).transferFrom(f.bob.address, await receiver.getAddress(), f.bobId);
      expect(await f.registry.getAgentWallet(f.bobId)).to.equal(await receiver.getAddress());
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [receiver, f.bob, f.escrow], [PRICE - FEE, 0n, -(PRICE - FEE)]);
      await expect(tx).not.to.emit(f.escrow, "PaymentCredited");
    });
  });

  // ================================================================== signed agreements
  describe("signed agreements", function () {
    it("hires once; replaying the same nonce reverts with TaskEscrowNonceUsed, even for other terms", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      await expect(hire(f, a, f.bob.address, signature)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [-PRICE, PRICE],
      );
      expect(await statusOf(f, 1n)).to.equal(Status.Accepted);
      expect(await f.escrow.nonceUsed(f.bobId, 1n)).to.equal(true);
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 1n);
      const cheaper = { ...a, price: usd(10) };
      await expect(hire(f, cheaper, f.bob.address, await signAgreement(f.escrow, f.bob, cheaper)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 1n);
      expect(await f.escrow.taskCount()).to.equal(1n);
    });

    it("a nonce the provider cancelled cannot be used", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f, { nonce: 7n });
      const signature = await signAgreement(f.escrow, f.bob, a);
      await f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 7n);
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 7n);
    });

    it("reverts with TaskEscrowBadSignature for a signature made for another chain id", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a, { chainId: 1n });
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
      expect(await f.escrow.nonceUsed(f.bobId, 1n)).to.equal(false);
    });

    it("reverts with TaskEscrowBadSignature for a signature made for another escrow address", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a, { verifyingContract: await f.registry.getAddress() });
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
    });

    it("reverts with TaskEscrowBadSignature for the malleable twin of a valid signature", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      await expect(hire(f, a, f.bob.address, malleate(signature)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
      // The original still works: the malleable attempt burned nothing.
      await expect(hire(f, a, f.bob.address, signature)).to.emit(f.escrow, "TaskAssigned");
    });

    it("reverts with TaskEscrowBadSignature for terms other than the signed ones", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      await expect(hire(f, { ...a, price: usd(1) }, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
    });

    it("reverts with TaskEscrowBadSignature when the signer may not act for the provider", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      await expect(hire(f, a, f.carol.address, await signAgreement(f.escrow, f.carol, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.carol.address);
    });

    it("accepts an ERC-1271 agent wallet's signature, and refuses it once the wallet rejects", async function () {
      const f = await loadFixture(deployEscrow);
      const wallet = await new MockERC1271Wallet__factory(f.admin).deploy(f.bob.address);
      const walletAddr = await wallet.getAddress();
      const deadline = (await now()) + 100n;
      const proof = await signAgentWallet(f.registry, f.bob, f.bobId, walletAddr, f.bob.address, deadline);
      await f.registry.connect(f.bob).setAgentWallet(f.bobId, walletAddr, deadline, proof);
      const a = await agreement(f);
      const b = await agreement(f, { nonce: 2n });
      await expect(hire(f, a, walletAddr, await signAgreement(f.escrow, f.bob, a))).to.emit(f.escrow, "TaskAssigned");
      await wallet.connect(f.bob).setRejectAll(true);
      await expect(hire(f, b, walletAddr, await signAgreement(f.escrow, f.bob, b)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(walletAddr);
    });
  });

  // ================================================================== operator caps
  describe("operator spending caps", function () {
    it("reverts with AgentRegistryPerTxCapExceeded when an operator posts above its per-transaction cap", async function () {
      const f = await loadFixture(withOperator);
      const params = await taskParams(f, { budget: usd(100) + 1n, maxBudget: usd(100) + 1n });
      await expect(f.escrow.connect(f.operator).postTask(params))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(100) + 1n, usd(100));
      // The cap counts the locked maximum budget, not the offer.
      const locked = await taskParams(f, { budget: usd(50), maxBudget: usd(150) });
      await expect(f.escrow.connect(f.operator).postTask(locked))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(150), usd(100));
      expect(await f.escrow.taskCount()).to.equal(0n);
    });

    it("reverts with AgentRegistryPeriodCapExceeded once the period cap is used up", async function () {
      const f = await loadFixture(withOperator);
      await f.escrow.connect(f.operator).postTask(await taskParams(f));
      await f.escrow.connect(f.operator).postTask(await taskParams(f));
      await expect(f.escrow.connect(f.operator).postTask(await taskParams(f)))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(f.usdtAddr, usd(100), usd(50));
      // What is left can still be spent; the funds come from the operator.
      await expect(
        f.escrow.connect(f.operator).postTask(await taskParams(f, { budget: usd(50), maxBudget: usd(50) })),
      ).to.changeTokenBalances(f.usdt, [f.operator, f.alice, f.escrow], [-usd(50), 0n, usd(50)]);
      await expect(f.escrow.connect(f.operator).postTask(await taskParams(f, { budget: usd(1), maxBudget: usd(1) })))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(f.usdtAddr, usd(1), 0n);
    });

    it("refunds of an operator's task go to the agent's wallet, not to the operator", async function () {
      const f = await loadFixture(withOperator);
      await f.escrow.connect(f.operator).postTask(await taskParams(f));
      await expect(f.escrow.connect(f.operator).closeTask(1n)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.operator],
        [PRICE, 0n],
      );
    });
  });

  // ================================================================== dust
  describe("dust", function () {
    it("posting below the per-token minimum reverts with TaskEscrowBadAmount", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { budget: MIN_BUDGET - 1n })))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(MIN_BUDGET - 1n);
      await expect(
        f.escrow
          .connect(f.alice)
          .postTask(await taskParams(f, { budget: MIN_BUDGET - 1n, maxBudget: MIN_BUDGET - 1n })),
      )
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(MIN_BUDGET - 1n);
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { budget: 1n, maxBudget: 1n })))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(1n);
    });

    it("a task at the minimum budget settles exactly and does not hold up a normal task", async function () {
      const f = await loadFixture(deployEscrow);
      const small = await postSubmitted(f, { budget: MIN_BUDGET, maxBudget: MIN_BUDGET });
      const normal = await postSubmitted(f);
      const smallFee = (MIN_BUDGET * PROTOCOL_FEE_BPS) / BPS;
      await expect(f.escrow.connect(f.alice).approve(normal)).to.changeTokenBalance(f.usdt, f.bob, PRICE - FEE);
      await expect(f.escrow.connect(f.alice).approve(small)).to.changeTokenBalance(
        f.usdt,
        f.bob,
        MIN_BUDGET - smallFee,
      );
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(FEE + smallFee);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(FEE + smallFee);
    });

    it("a dust bid below the token minimum is refused; a minimum bid does not block the others", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { mode: Mode.Bidding, providerId: 0n });
      await expect(f.escrow.connect(f.carol).placeBid(id, f.carolId, MIN_BUDGET - 1n, DAY, ethers.ZeroHash))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(MIN_BUDGET - 1n);
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, MIN_BUDGET, DAY, ethers.ZeroHash);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(80), DAY, ethers.ZeroHash);
      await f.escrow.connect(f.dave).placeBid(id, f.daveId, usd(90), DAY, ethers.ZeroHash);
      await expect(
        f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(80), DAY, ethers.ZeroHash),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(20), -usd(20)]);
      expect((await f.escrow.getTask(id)).providerId).to.equal(f.bobId);
      // Another task proceeds alongside.
      const other = await postSubmitted(f);
      await expect(f.escrow.connect(f.alice).approve(other)).to.changeTokenBalance(f.usdt, f.bob, PRICE - FEE);
    });

    it("with a 1-unit token minimum, a 1-unit task goes through a zero-deposit dispute without blocking", async function () {
      const f = await loadFixture(deployEscrow);
      await f.escrow.setToken(await f.usdt.getAddress(), 1n);
      const id = await post(f, { mode: Mode.Bidding, providerId: 0n });
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, 1n, DAY, ethers.ZeroHash);
      await expect(f.escrow.connect(f.alice).selectBid(id, f.carolId, 1n, DAY, ethers.ZeroHash)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [PRICE - 1n, -(PRICE - 1n)],
      );
      await f.escrow.connect(f.carol).submitWork(id, DELIVERABLE, "ipfs://d");
      await f.escrow.connect(f.alice).reject(id, REASON);
      await expect(f.escrow.connect(f.carol).raiseDispute(id))
        .to.emit(f.escrow, "DisputeRaised")
        .withArgs(id, await f.arbitrator.getAddress(), 0n);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(id)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.arbitrator, f.escrow],
        [0n, 0n, 0n],
      );
      const tx = await f.arbitrator.giveRuling((await f.escrow.getDispute(id)).disputeId, Ruling.P100);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.carol, f.alice, f.escrow], [1n, 0n, -1n]);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 1n, 0n, 0n);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(0n);
    });
  });

  // ================================================================== front-running
  describe("front-running a bid selection", function () {
    const SEEN = ethers.id("proposal: full translation, native reviewer, 2 rounds of edits");
    const SWAPPED = ethers.id("proposal: machine translation, no edits");

    it("a provider that swaps its proposal (same price and eta) in front of selectBid makes the selection revert with TaskEscrowTermsChanged", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { mode: Mode.Bidding, providerId: 0n, budget: PRICE, maxBudget: PRICE });

      // The client reads bob's bid: price, eta and proposal (BidPlaced.proposalHash = SEEN).
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(90), DAY, SEEN);
      const bid = await f.escrow.getBid(id, f.bobId);
      expect(bid.proposal).to.equal(ethers.dataSlice(SEEN, 0, 16));

      // Bob front-runs the client's selectBid with the same price and eta but another proposal.
      await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, bid.price, bid.eta, SWAPPED))
        .to.emit(f.escrow, "BidPlaced")
        .withArgs(id, f.bobId, bid.price, bid.eta, SWAPPED);

      // The client's selection, made against SEEN, is refused; nothing moves.
      const balance = await f.usdt.balanceOf(await f.escrow.getAddress());
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, bid.price, bid.eta, SEEN))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
        .withArgs(id);
      expect(await statusOf(f, id)).to.equal(Status.Open);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(balance);

      // A client that reviewed the new proposal selects it knowingly.
      const select = f.escrow.connect(f.alice).selectBid(id, f.bobId, bid.price, bid.eta, SWAPPED);
      await expect(select).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [PRICE - usd(90), -(PRICE - usd(90))]);
      const t = await f.escrow.getTask(id);
      expect([t.status, t.providerId, t.amount]).to.deep.equal([BigInt(Status.Accepted), f.bobId, usd(90)]);
    });

    it("withdrawing and bidding again with another proposal is refused the same way", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { mode: Mode.Bidding, providerId: 0n, budget: PRICE, maxBudget: PRICE });
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(90), DAY, SEEN);
      await f.escrow.connect(f.bob).withdrawBid(id, f.bobId);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(90), DAY, SWAPPED);
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(90), DAY, SEEN))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
        .withArgs(id);
    });
  });

  // ================================================================== arbitrator migration
  describe("an arbitrator that stops accepting the escrow's cases (documented limitation)", function () {
    // audits/known-limitations.md (TaskEscrow) and the operational rule in audits/threat-model.md:
    // never revoke the escrow's role on an arbitrator, nor retire it, while tasks it was
    // snapshotted for are Disputed or in Arbitration. No try/catch on createDispute: it would let
    // a client about to lose force the failure with a gas-limited call (EIP-150).
    it("documented behaviour: when createDispute reverts the client cannot deposit, and the timeout pays the provider in full", async function () {
      const f = await loadFixture(deployEscrow);
      const court = f.court;
      const courtAddr = await court.getAddress();
      const escrowAddr = await f.escrow.getAddress();
      const ARBITRABLE_ROLE = await court.ARBITRABLE_ROLE();
      expect(await court.hasRole(ARBITRABLE_ROLE, escrowAddr)).to.equal(true);
      await f.escrow.setArbitrator(courtAddr);

      // Bob delivers, alice rejects, bob disputes: the court is snapshotted for this dispute.
      const id = await postDisputed(f);
      expect((await f.escrow.getDispute(id)).arbitrator).to.equal(courtAddr);

      // The admin breaks the operational rule: it moves to another arbitrator and revokes the
      // escrow's role on the old court while this dispute waits for alice's deposit.
      await f.escrow.setArbitrator(await f.arbitrator.getAddress());
      await court.revokeRole(ARBITRABLE_ROLE, escrowAddr);

      // Alice pays her deposit in time: createDispute reverts, so the whole deposit reverts.
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(id))
        .to.be.revertedWithCustomError(court, "AccessControlUnauthorizedAccount")
        .withArgs(escrowAddr, ARBITRABLE_ROLE);
      expect(await statusOf(f, id)).to.equal(Status.Disputed);

      // After the window, anyone settles it as the provider's win by default.
      await time.increaseTo((await deadlineOf(f, id)) + 1n);
      const tx = f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.alice], [PRICE - FEE + DEPOSIT, 0n]);
      expect(await statusOf(f, id)).to.equal(Status.Resolved);
    });
  });

  // ================================================================== conservation
  describe("funds conservation", function () {
    it("the escrow balance always equals live task amounts + held deposits + credits + accrued fees", async function () {
      const f = await loadFixture(withBlacklist);
      const usdtAddr = await f.usdt.getAddress();
      const check = async () => {
        await expectConservation(f, usdtAddr);
        await expectConservation(f, f.blkAddr);
      };
      const odd = usd(100) + 3n;

      // Live tasks in every state, in two tokens, some at odd prices.
      const open = await post(f, { mode: Mode.Bidding, providerId: 0n, budget: usd(50), maxBudget: usd(120) });
      await check();
      const accepted = await postAccepted(f, { budget: usd(60), maxBudget: usd(75) }); // 15 refunded at assignment
      await check();
      const submitted = await postSubmitted(f, { budget: odd, maxBudget: odd });
      const rejected = await postRejected(f, { token: f.blkAddr, budget: odd, maxBudget: odd });
      const disputed = await postDisputed(f, { budget: 123_456_789n, maxBudget: 123_456_789n });
      const arbitration = await postInArbitration(f, {
        token: f.blkAddr,
        budget: 123_456_789n,
        maxBudget: 123_456_789n,
      });
      const blkSubmitted = await postSubmitted(f, { token: f.blkAddr, budget: odd, maxBudget: odd });
      const split = await postInArbitration(f, { budget: odd, maxBudget: odd });
      let totals = await expectConservation(f, usdtAddr);
      expect(totals.live).to.be.greaterThan(0n);
      expect(totals.deposits).to.be.greaterThan(0n);
      await check();

      // Settlements, with failing recipients in the blacklisting token.
      await f.blk.setBlacklisted(f.bob.address, true);
      await f.escrow.connect(f.alice).approve(blkSubmitted); // bob credited
      await check();
      await f.arbitrator.giveRuling((await f.escrow.getDispute(arbitration)).disputeId, Ruling.P75); // bob credited
      await check();
      await f.blk.setBlacklisted(f.alice.address, true);
      await f.escrow.connect(f.bob).agreeRefund(rejected); // alice credited
      await check();
      totals = await expectConservation(f, f.blkAddr);
      expect(totals.credits).to.be.greaterThan(0n);
      expect(totals.fees).to.be.greaterThan(0n);

      await f.escrow.connect(f.alice).approve(submitted);
      await f.arbitrator.giveRuling((await f.escrow.getDispute(split)).disputeId, Ruling.Refused);
      await check();
      await f.escrow.connect(f.alice).closeTask(accepted);
      await check();
      await f.escrow.connect(f.stranger).sweepFees(usdtAddr);
      await check();

      // Timeouts of everything left.
      await time.increase(200n * DAY);
      await f.escrow.connect(f.stranger).timeout(open);
      await f.escrow.connect(f.stranger).timeout(accepted);
      await f.escrow.connect(f.stranger).timeout(disputed);
      await check();

      // Withdrawals of every credit and the last sweeps.
      await f.escrow.connect(f.bob).withdraw(f.blkAddr, f.carol.address);
      await f.escrow.connect(f.alice).withdraw(f.blkAddr, f.carol.address);
      await f.escrow.sweepFees(usdtAddr);
      await f.escrow.sweepFees(f.blkAddr);
      totals = await expectConservation(f, usdtAddr);
      expect(totals).to.deep.equal({ live: 0n, deposits: 0n, credits: 0n, fees: 0n });
      totals = await expectConservation(f, f.blkAddr);
      expect(totals).to.deep.equal({ live: 0n, deposits: 0n, credits: 0n, fees: 0n });
      for (const id of [open, accepted, submitted, rejected, disputed, arbitration, blkSubmitted, split]) {
        expect(await statusOf(f, id)).to.be.greaterThanOrEqual(Status.Completed);
      }
    });
  });
});
