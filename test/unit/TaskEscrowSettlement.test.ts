import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  ARBITRATION_FEE_BPS,
  DAY,
  HOUR,
  Mode,
  PROTOCOL_FEE_BPS,
  Ruling,
  Status,
  deployEscrow,
  post,
  postAccepted,
  postSubmitted,
  taskParams,
  type EscrowFixture,
} from "../fixtures/escrow";
import { Outcome, now, signAgentWallet, usd } from "../fixtures/helpers";
import { REPORTER_ROLE, SPENDER_ROLE } from "../fixtures/system";
import {
  ERC1967Proxy__factory,
  MockArbitrator__factory,
  MockBlacklistToken__factory,
  TaskEscrow__factory,
  type TaskEscrow,
} from "../../typechain-types";

// ---------------------------------------------------------------------- constants

type Over = Partial<Parameters<TaskEscrow["postTask"]>[0]>;

const BPS = 10_000n;
const PRICE = usd(100); // default price of the fixture's tasks
const FEE = (PRICE * PROTOCOL_FEE_BPS) / BPS; // 1 USDT
const DEPOSIT = (PRICE * ARBITRATION_FEE_BPS) / BPS; // 5 USDT
const ARBITRATION_TIMEOUT = 180n * DAY;
const RULING_OPTIONS = 5n;
const MAX_URI_BYTES = 512n;
const UNKNOWN_TASK = 99n;
const DELIVERABLE = ethers.id("deliverable");
const DELIVERABLE_URI = "ipfs://deliverable";
const REASON = ethers.id("reason");
const EVIDENCE = "ipfs://evidence";

/** Every ruling with the provider's share and the outcome recorded in Reputation. */
const RULINGS = [
  { ruling: Ruling.Refused, shareBps: 5_000n, outcome: Outcome.DisputeSplit },
  { ruling: Ruling.P0, shareBps: 0n, outcome: Outcome.DisputeClientWon },
  { ruling: Ruling.P25, shareBps: 2_500n, outcome: Outcome.DisputeSplit },
  { ruling: Ruling.P50, shareBps: 5_000n, outcome: Outcome.DisputeSplit },
  { ruling: Ruling.P75, shareBps: 7_500n, outcome: Outcome.DisputeSplit },
  { ruling: Ruling.P100, shareBps: 10_000n, outcome: Outcome.DisputeProviderWon },
] as const;

// ---------------------------------------------------------------------- helpers

/** Timestamp of the block that mined `tx`. */
async function timestampOf(tx: ContractTransactionResponse) {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

async function deadlineOf(f: EscrowFixture, id: bigint) {
  return (await f.escrow.getTask(id)).deadline;
}

async function statusOf(f: EscrowFixture, id: bigint) {
  return (await f.escrow.getTask(id)).status;
}

/** The split of `price` for a provider share of `shareBps`: the fee is taken from the provider's share. */
function split(price: bigint, shareBps: bigint, feeBps = PROTOCOL_FEE_BPS) {
  const share = (price * shareBps) / BPS;
  const fee = (share * feeBps) / BPS;
  return { toProvider: share - fee, toClient: price - share, fee };
}

/** A direct task alice → bob, delivered and rejected by alice. */
async function postRejected(f: EscrowFixture, over: Over = {}) {
  const id = await postSubmitted(f, over);
  await f.escrow.connect(f.alice).reject(id, REASON);
  return id;
}

/** A direct task alice → bob, accepted, then alice asked to cancel. */
async function postCancelRequested(f: EscrowFixture, over: Over = {}) {
  const id = await postAccepted(f, over);
  await f.escrow.connect(f.alice).closeTask(id);
  return id;
}

/** A rejected task whose provider raised a dispute (bob paid the deposit). */
async function postDisputed(f: EscrowFixture, over: Over = {}) {
  const id = await postRejected(f, over);
  await f.escrow.connect(f.bob).raiseDispute(id);
  return id;
}

/** A disputed task whose client paid its deposit: it is with the arbitrator. */
async function postInArbitration(f: EscrowFixture, over: Over = {}) {
  const id = await postDisputed(f, over);
  await f.escrow.connect(f.alice).payDisputeDeposit(id);
  return id;
}

/** `wallet` becomes the agent wallet of `agentId` (owned by `owner`). */
async function setWallet(f: EscrowFixture, agentId: bigint, owner: HardhatEthersSigner, wallet: HardhatEthersSigner) {
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(f.registry, wallet, agentId, wallet.address, owner.address, deadline);
  await f.registry.connect(owner).setAgentWallet(agentId, wallet.address, deadline, signature);
}

/** The Reputation record of `agentId` as a plain object of the task counters. */
async function countersOf(f: EscrowFixture, agentId: bigint) {
  const r = await f.reputation.getRecord(agentId);
  return {
    tasksCompleted: r.tasksCompleted,
    tasksAutoCompleted: r.tasksAutoCompleted,
    tasksRefunded: r.tasksRefunded,
    disputesWon: r.disputesWon,
    disputesLost: r.disputesLost,
    disputesSplit: r.disputesSplit,
    tasksAsClient: r.tasksAsClient,
  };
}

const NO_COUNTERS = {
  tasksCompleted: 0n,
  tasksAutoCompleted: 0n,
  tasksRefunded: 0n,
  disputesWon: 0n,
  disputesLost: 0n,
  disputesSplit: 0n,
  tasksAsClient: 0n,
};

// ---------------------------------------------------------------------- fixtures

/**
 * deployEscrow, plus every kind of actor: alice's agent (#1) has `aliceWallet` (signer 9) as agent
 * wallet and `operator` as operator; bob's agent (#2) has `bobWallet` (signer 11) as agent wallet
 * and `bobOperator` (signer 10) as operator. The new actors hold USDT and approved the escrow.
 */
async function withActors() {
  const f = await deployEscrow();
  const signers = await ethers.getSigners();
  const [aliceWallet, bobOperator, bobWallet] = [signers[9], signers[10], signers[11]];
  const expiry = (await now()) + 365n * DAY;
  const terms = { expiry, minScoreBps: 0, allowListOnly: false };
  await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, terms);
  await f.registry.connect(f.bob).setOperator(f.bobId, bobOperator.address, terms);
  await setWallet(f, f.aliceId, f.alice, aliceWallet);
  await setWallet(f, f.bobId, f.bob, bobWallet);
  for (const who of [aliceWallet, bobOperator, bobWallet]) {
    await f.usdt.mint(who.address, usd(1_000_000));
    await f.usdt.connect(who).approve(await f.escrow.getAddress(), ethers.MaxUint256);
  }
  return { ...f, aliceWallet, aliceOperator: f.operator, bobWallet, bobOperator };
}

type ActorsFixture = Awaited<ReturnType<typeof withActors>>;
type Role = "owner" | "agent wallet" | "operator";
const ROLES: Role[] = ["owner", "agent wallet", "operator"];

function clientActor(f: ActorsFixture, role: Role) {
  return role === "owner" ? f.alice : role === "agent wallet" ? f.aliceWallet : f.aliceOperator;
}

function providerActor(f: ActorsFixture, role: Role) {
  return role === "owner" ? f.bob : role === "agent wallet" ? f.bobWallet : f.bobOperator;
}

/** deployEscrow plus a blacklisting token (mBLK) allow-listed at 1 unit minimum, funded for alice and bob. */
async function withBlacklist() {
  const f = await deployEscrow();
  const blk = await new MockBlacklistToken__factory(f.admin).deploy();
  await f.escrow.setToken(await blk.getAddress(), usd(1));
  for (const who of [f.alice, f.bob]) {
    await blk.mint(who.address, usd(1_000_000));
    await blk.connect(who).approve(await f.escrow.getAddress(), ethers.MaxUint256);
  }
  return { ...f, blk, blkAddr: await blk.getAddress() };
}

/** A second TaskEscrow proxy wired to the same registry and Reputation, with no arbitrator. */
async function withEscrowWithoutArbitrator() {
  const f = await deployEscrow();
  const impl = await new TaskEscrow__factory(f.admin).deploy();
  const init = impl.interface.encodeFunctionData("initialize", [
    f.admin.address,
    await f.registry.getAddress(),
    await f.reputation.getAddress(),
    f.treasury.address,
    PROTOCOL_FEE_BPS,
    ARBITRATION_FEE_BPS,
  ]);
  const proxy = await new ERC1967Proxy__factory(f.admin).deploy(await impl.getAddress(), init);
  const bare = TaskEscrow__factory.connect(await proxy.getAddress(), f.admin);
  await f.registry.grantRole(SPENDER_ROLE, await bare.getAddress());
  await f.reputation.grantRole(REPORTER_ROLE, await bare.getAddress());
  await bare.setToken(await f.usdt.getAddress(), usd(1));
  for (const who of [f.alice, f.bob]) {
    await f.usdt.connect(who).approve(await bare.getAddress(), ethers.MaxUint256);
  }
  return { ...f, bare };
}

/** A second, unrelated arbitrator. */
async function withRogueArbitrator() {
  const f = await deployEscrow();
  const rogue = await new MockArbitrator__factory(f.admin).deploy();
  return { ...f, rogue };
}

// ---------------------------------------------------------------------- tests

describe("TaskEscrow settlement", function () {
  // ================================================================== submitWork
  describe("submitWork", function () {
    it("moves an accepted task to Submitted, starts the review period and emits WorkSubmitted", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f, { reviewPeriod: 3n * HOUR });
      const tx = await f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Accepted, Status.Submitted);
      await expect(tx).to.emit(f.escrow, "WorkSubmitted").withArgs(id, DELIVERABLE, DELIVERABLE_URI);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      const t = await f.escrow.getTask(id);
      expect(t.status).to.equal(Status.Submitted);
      expect(t.deadline).to.equal((await timestampOf(tx)) + 3n * HOUR);
      expect(t.amount).to.equal(PRICE);
    });

    it("delivers from CancelRequested within the cancellation window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      const tx = await f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.CancelRequested, Status.Submitted);
      await expect(tx).to.emit(f.escrow, "WorkSubmitted").withArgs(id, DELIVERABLE, DELIVERABLE_URI);
      expect(await statusOf(f, id)).to.equal(Status.Submitted);
      expect(await deadlineOf(f, id)).to.equal((await timestampOf(tx)) + DAY);
    });

    it("accepts a delivery at the last second of the delivery deadline", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      const deadline = await deadlineOf(f, id);
      await time.setNextBlockTimestamp(deadline);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Accepted, Status.Submitted);
    });

    it("reverts with TaskEscrowDeadlinePassed one second after the delivery deadline", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      const deadline = await deadlineOf(f, id);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowDeadlinePassed after the cancellation window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      const deadline = await deadlineOf(f, id);
      await time.increaseTo(deadline + 1n);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("accepts a URI of exactly 512 bytes", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      const uri = "a".repeat(Number(MAX_URI_BYTES));
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, uri))
        .to.emit(f.escrow, "WorkSubmitted")
        .withArgs(id, DELIVERABLE, uri);
    });

    it("reverts with TaskEscrowInputTooLong(513, 512) for a URI one byte too long", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, "a".repeat(513)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowInputTooLong")
        .withArgs(513n, MAX_URI_BYTES);
    });

    it("counts the URI length in bytes, not characters", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      // 257 two-byte characters = 514 bytes.
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, "é".repeat(257)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowInputTooLong")
        .withArgs(514n, MAX_URI_BYTES);
    });

    it("reverts with TaskEscrowWrongStatus on an open task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Open);
    });

    it("reverts with TaskEscrowWrongStatus on a task already delivered", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Submitted);
    });

    it("reverts with TaskEscrowWrongStatus on a rejected task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Rejected);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).submitWork(UNKNOWN_TASK, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the client", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.alice).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.alice.address);
    });

    it("reverts with TaskEscrowNotAuthorized for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.stranger).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.stranger.address);
    });

    for (const role of ROLES) {
      it(`lets the provider agent's ${role} deliver`, async function () {
        const f = await loadFixture(withActors);
        const id = await postAccepted(f);
        await expect(f.escrow.connect(providerActor(f, role)).submitWork(id, DELIVERABLE, DELIVERABLE_URI))
          .to.emit(f.escrow, "WorkSubmitted")
          .withArgs(id, DELIVERABLE, DELIVERABLE_URI);
        expect(await statusOf(f, id)).to.equal(Status.Submitted);
      });
    }
  });

  // ================================================================== approve
  describe("approve", function () {
    it("pays the provider the price minus the fee, keeps the fee in the escrow and completes the task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.treasury],
        [0n, PRICE - FEE, -(PRICE - FEE), 0n],
      );
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Submitted, Status.Completed);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
      await expect(tx).not.to.emit(f.escrow, "PaymentCredited");
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(FEE);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(FEE);
      const t = await f.escrow.getTask(id);
      expect(t.status).to.equal(Status.Completed);
      expect(t.amount).to.equal(PRICE);
    });

    it("records Completed in Reputation and grants both owners a feedback right weighted by the price", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      const tx = await f.escrow.connect(f.alice).approve(id);
      const usdtAddr = await f.usdt.getAddress();
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Completed, usdtAddr, PRICE, false);
      await expect(tx).to.emit(f.reputation, "FeedbackRightGranted").withArgs(f.bobId, f.alice.address, 1n, PRICE);
      await expect(tx).to.emit(f.reputation, "FeedbackRightGranted").withArgs(f.aliceId, f.bob.address, 1n, PRICE);
      expect(await f.reputation.feedbackRights(f.bobId, f.alice.address)).to.deep.equal([1n, PRICE]);
      expect(await f.reputation.feedbackRights(f.aliceId, f.bob.address)).to.deep.equal([1n, PRICE]);
      expect(await countersOf(f, f.bobId)).to.deep.equal({ ...NO_COUNTERS, tasksCompleted: 1n });
      expect(await countersOf(f, f.aliceId)).to.deep.equal({ ...NO_COUNTERS, tasksAsClient: 1n });
      expect(await f.reputation.getVolume(f.bobId, usdtAddr)).to.equal(PRICE);
      expect(await f.reputation.getVolume(f.aliceId, usdtAddr)).to.equal(PRICE);
    });

    it("rounds the fee down on an odd price and loses no wei", async function () {
      const f = await loadFixture(deployEscrow);
      const price = usd(100) + 3n; // fee 1,000,000.03 -> 1,000,000
      const id = await postSubmitted(f, { budget: price, maxBudget: price });
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 99_000_003n, -99_000_003n]);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 99_000_003n, 0n, 1_000_000n);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(1_000_000n);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(1_000_000n);
    });

    it("uses the protocol fee snapshotted when the task was posted", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await f.escrow.setFees(1_000, 1_000);
      await expect(f.escrow.connect(f.alice).approve(id))
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
    });

    it("charges no fee on a task posted while the fee was zero", async function () {
      const f = await loadFixture(deployEscrow);
      await f.escrow.setFees(0, Number(ARBITRATION_FEE_BPS));
      const id = await postSubmitted(f);
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.escrow], [PRICE, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, PRICE, 0n, 0n);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(0n);
    });

    it("pays the wallet the provider agent has at payment time", async function () {
      const f = await loadFixture(deployEscrow);
      const bobWallet = (await ethers.getSigners())[11];
      const id = await postSubmitted(f);
      await setWallet(f, f.bobId, f.bob, bobWallet);
      const tx = await f.escrow.connect(f.alice).approve(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, bobWallet, f.escrow],
        [0n, 0n, PRICE - FEE, -(PRICE - FEE)],
      );
    });

    it("reverts with TaskEscrowWrongStatus before delivery", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.alice).approve(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });

    it("reverts with TaskEscrowWrongStatus after a rejection", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.alice).approve(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Rejected);
    });

    it("reverts with TaskEscrowWrongStatus on a second approval (cannot pay twice)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await f.escrow.connect(f.alice).approve(id);
      await expect(f.escrow.connect(f.alice).approve(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Completed);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).approve(UNKNOWN_TASK))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the provider", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.bob).approve(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.bob.address);
    });

    it("reverts with TaskEscrowNotAuthorized for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.stranger).approve(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.stranger.address);
    });

    for (const role of ROLES) {
      it(`lets the client agent's ${role} approve; the provider's wallet is paid`, async function () {
        const f = await loadFixture(withActors);
        const id = await postSubmitted(f);
        const tx = await f.escrow.connect(clientActor(f, role)).approve(id);
        await expect(tx)
          .to.emit(f.escrow, "TaskSettled")
          .withArgs(id, PRICE - FEE, 0n, FEE);
        await expect(tx).to.changeTokenBalances(
          f.usdt,
          [f.bob, f.bobWallet, f.bobOperator, f.escrow],
          [0n, PRICE - FEE, 0n, -(PRICE - FEE)],
        );
      });
    }
  });

  // ================================================================== reject
  describe("reject", function () {
    it("moves to Rejected, starts a decision window of one review period and emits WorkRejected", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f, { reviewPeriod: 3n * HOUR });
      const tx = await f.escrow.connect(f.alice).reject(id, REASON);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Submitted, Status.Rejected);
      await expect(tx).to.emit(f.escrow, "WorkRejected").withArgs(id, REASON);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      await expect(tx).not.to.emit(f.reputation, "TaskRecorded");
      expect(await statusOf(f, id)).to.equal(Status.Rejected);
      expect(await deadlineOf(f, id)).to.equal((await timestampOf(tx)) + 3n * HOUR);
    });

    it("accepts a rejection at the last second of the review period", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await time.setNextBlockTimestamp(await deadlineOf(f, id));
      await expect(f.escrow.connect(f.alice).reject(id, REASON)).to.emit(f.escrow, "WorkRejected").withArgs(id, REASON);
    });

    it("reverts with TaskEscrowDeadlinePassed after the review period", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      const deadline = await deadlineOf(f, id);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.escrow.connect(f.alice).reject(id, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowWrongStatus before delivery", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.alice).reject(id, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });

    it("reverts with TaskEscrowWrongStatus on a second rejection", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.alice).reject(id, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Rejected);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).reject(UNKNOWN_TASK, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the provider and for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.bob).reject(id, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.bob.address);
      await expect(f.escrow.connect(f.stranger).reject(id, REASON))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.stranger.address);
    });

    for (const role of ROLES) {
      it(`lets the client agent's ${role} reject`, async function () {
        const f = await loadFixture(withActors);
        const id = await postSubmitted(f);
        await expect(f.escrow.connect(clientActor(f, role)).reject(id, REASON))
          .to.emit(f.escrow, "WorkRejected")
          .withArgs(id, REASON);
      });
    }
  });

  // ================================================================== agreeRefund
  describe("agreeRefund", function () {
    it("refunds the client in full after a rejection and records Refunded", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      const tx = await f.escrow.connect(f.bob).agreeRefund(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow, f.treasury], [PRICE, 0n, -PRICE, 0n]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Rejected, Status.Refunded);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), 0n, false);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(0n);
      expect(await statusOf(f, id)).to.equal(Status.Refunded);
      expect(await countersOf(f, f.bobId)).to.deep.equal({ ...NO_COUNTERS, tasksRefunded: 1n });
      // One right each, weighing the value paid: nothing (review finding RP-1).
      expect(await f.reputation.feedbackRights(f.bobId, f.alice.address)).to.deep.equal([1n, 0n]);
      expect(await f.reputation.feedbackRights(f.aliceId, f.bob.address)).to.deep.equal([1n, 0n]);
    });

    it("refunds the client in full in answer to a cancellation request", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      const tx = await f.escrow.connect(f.bob).agreeRefund(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [PRICE, 0n, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.CancelRequested, Status.Refunded);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), 0n, false);
    });

    it("refunds the wallet the client agent has at payment time", async function () {
      const f = await loadFixture(deployEscrow);
      const aliceWallet = (await ethers.getSigners())[9];
      const id = await postRejected(f);
      await setWallet(f, f.aliceId, f.alice, aliceWallet);
      await expect(f.escrow.connect(f.bob).agreeRefund(id)).to.changeTokenBalances(
        f.usdt,
        [f.alice, aliceWallet, f.escrow],
        [0n, PRICE, -PRICE],
      );
    });

    it("reverts with TaskEscrowWrongStatus on a delivered task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.bob).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Submitted);
    });

    it("reverts with TaskEscrowWrongStatus on an accepted task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await expect(f.escrow.connect(f.bob).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });

    it("reverts with TaskEscrowWrongStatus on a disputed task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      await expect(f.escrow.connect(f.bob).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Disputed);
    });

    it("reverts with TaskEscrowWrongStatus on a second refund (cannot pay twice)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await f.escrow.connect(f.bob).agreeRefund(id);
      await expect(f.escrow.connect(f.bob).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Refunded);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).agreeRefund(UNKNOWN_TASK))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the client and for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.alice).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.alice.address);
      await expect(f.escrow.connect(f.stranger).agreeRefund(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.stranger.address);
    });

    for (const role of ROLES) {
      it(`lets the provider agent's ${role} agree; the client's wallet is refunded`, async function () {
        const f = await loadFixture(withActors);
        const id = await postRejected(f);
        const tx = await f.escrow.connect(providerActor(f, role)).agreeRefund(id);
        await expect(tx).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.aliceWallet, f.aliceOperator, f.escrow],
          [0n, PRICE, 0n, -PRICE],
        );
      });
    }
  });

  // ================================================================== closeTask
  describe("closeTask", function () {
    it("closes an open task with a full refund and records nothing in Reputation", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      const tx = await f.escrow.connect(f.alice).closeTask(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [PRICE, 0n, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Open, Status.Closed);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx).not.to.emit(f.reputation, "TaskRecorded");
      expect(await statusOf(f, id)).to.equal(Status.Closed);
      expect(await countersOf(f, f.aliceId)).to.deep.equal(NO_COUNTERS);
      expect(await countersOf(f, f.bobId)).to.deep.equal(NO_COUNTERS);
    });

    it("refunds the whole locked maximum budget of an open bidding task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { mode: Mode.Bidding, providerId: 0n, budget: usd(100), maxBudget: usd(150) });
      const tx = await f.escrow.connect(f.alice).closeTask(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(150), -usd(150)]);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, usd(150), 0n);
    });

    it("closes an open task even after its acceptance deadline", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await time.increaseTo((await deadlineOf(f, id)) + 1n);
      await expect(f.escrow.connect(f.alice).closeTask(id))
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Closed);
    });

    it("asks the provider of an accepted task to cancel, with one review period to answer", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f); // delivery 2 days, review 1 day
      const deliveryDeadline = await deadlineOf(f, id);
      const tx = await f.escrow.connect(f.alice).closeTask(id);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Accepted, Status.CancelRequested);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      await expect(tx).not.to.emit(f.escrow, "TaskSettled");
      const ts = await timestampOf(tx);
      expect(ts + DAY).to.be.lessThan(deliveryDeadline);
      expect(await statusOf(f, id)).to.equal(Status.CancelRequested);
      expect(await deadlineOf(f, id)).to.equal(ts + DAY);
    });

    it("never gives the provider more time than the delivery deadline left", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      const deliveryDeadline = await deadlineOf(f, id);
      await time.increaseTo(deliveryDeadline - HOUR);
      await f.escrow.connect(f.alice).closeTask(id);
      expect(await statusOf(f, id)).to.equal(Status.CancelRequested);
      expect(await deadlineOf(f, id)).to.equal(deliveryDeadline);
    });

    it("keeps a passed delivery deadline, so the cancellation can time out at once", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      const deliveryDeadline = await deadlineOf(f, id);
      await time.increaseTo(deliveryDeadline + 10n);
      await f.escrow.connect(f.alice).closeTask(id);
      expect(await deadlineOf(f, id)).to.equal(deliveryDeadline);
      await expect(f.escrow.connect(f.stranger).timeout(id))
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.CancelRequested, Status.Refunded);
    });

    it("reverts with TaskEscrowWrongStatus on a delivered task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await expect(f.escrow.connect(f.alice).closeTask(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Submitted);
    });

    it("reverts with TaskEscrowWrongStatus on a second cancellation request", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      await expect(f.escrow.connect(f.alice).closeTask(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.CancelRequested);
    });

    it("reverts with TaskEscrowWrongStatus on a closed task (cannot refund twice)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.alice).closeTask(id);
      await expect(f.escrow.connect(f.alice).closeTask(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Closed);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).closeTask(UNKNOWN_TASK))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the provider and for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const open = await post(f);
      const accepted = await postAccepted(f);
      for (const id of [open, accepted]) {
        await expect(f.escrow.connect(f.bob).closeTask(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.aliceId, f.bob.address);
        await expect(f.escrow.connect(f.stranger).closeTask(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.aliceId, f.stranger.address);
      }
    });

    for (const role of ROLES) {
      it(`lets the client agent's ${role} close an open task (refund to the agent wallet) and cancel an accepted one`, async function () {
        const f = await loadFixture(withActors);
        const open = await post(f);
        const accepted = await postAccepted(f);
        const actor = clientActor(f, role);
        await expect(f.escrow.connect(actor).closeTask(open)).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.aliceWallet, f.escrow],
          [0n, PRICE, -PRICE],
        );
        await expect(f.escrow.connect(actor).closeTask(accepted))
          .to.emit(f.escrow, "TaskStateChanged")
          .withArgs(accepted, Status.Accepted, Status.CancelRequested);
      });
    }
  });

  // ================================================================== timeout
  describe("timeout", function () {
    it("expires an open task after its acceptance deadline with a full refund, recording nothing", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow, f.stranger], [PRICE, 0n, -PRICE, 0n]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Open, Status.Expired);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx).not.to.emit(f.reputation, "TaskRecorded");
      expect(await statusOf(f, id)).to.equal(Status.Expired);
    });

    it("refunds an accepted task whose delivery deadline passed and records Refunded", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postAccepted(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [PRICE, 0n, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Accepted, Status.Refunded);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), 0n, false);
      expect(await countersOf(f, f.bobId)).to.deep.equal({ ...NO_COUNTERS, tasksRefunded: 1n });
    });

    it("refunds a cancellation request the provider left unanswered", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [PRICE, 0n, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.CancelRequested, Status.Refunded);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), 0n, false);
    });

    it("completes a delivery the client left unreviewed: provider paid minus the fee, AutoCompleted", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postSubmitted(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.treasury],
        [0n, PRICE - FEE, -(PRICE - FEE), 0n],
      );
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Submitted, Status.Completed);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.AutoCompleted, await f.usdt.getAddress(), PRICE, false);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(FEE);
      expect(await countersOf(f, f.bobId)).to.deep.equal({ ...NO_COUNTERS, tasksAutoCompleted: 1n });
      expect(await f.reputation.feedbackRights(f.bobId, f.alice.address)).to.deep.equal([1n, PRICE]);
      expect(await f.reputation.feedbackRights(f.aliceId, f.bob.address)).to.deep.equal([1n, PRICE]);
    });

    it("refunds a rejection the provider left unanswered", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [PRICE, 0n, -PRICE]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Rejected, Status.Refunded);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, PRICE, 0n);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), 0n, false);
    });

    it("resolves a dispute the client never paid for: provider paid in full minus the fee, deposit back", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      await time.increaseTo(await deadlineOf(f, id));
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.arbitrator, f.treasury],
        [0n, PRICE - FEE + DEPOSIT, -(PRICE - FEE + DEPOSIT), 0n, 0n],
      );
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Disputed, Status.Resolved);
      await expect(tx).to.emit(f.escrow, "DepositsReturned").withArgs(id, DEPOSIT, 0n);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(id, PRICE - FEE, 0n, FEE);
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.DisputeProviderWon, await f.usdt.getAddress(), PRICE, false);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(FEE);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(FEE);
      expect(await countersOf(f, f.bobId)).to.deep.equal({ ...NO_COUNTERS, disputesWon: 1n });
      expect(await countersOf(f, f.aliceId)).to.deep.equal({ ...NO_COUNTERS, disputesLost: 1n, tasksAsClient: 1n });
    });

    it("splits evenly, as for a refused ruling, after the arbitrator stayed silent for ARBITRATION_TIMEOUT", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postInArbitration(f);
      const deadline = await deadlineOf(f, id);
      await time.increaseTo(deadline);
      const { toProvider, toClient, fee } = split(PRICE, 5_000n);
      const half = DEPOSIT / 2n;
      const tx = await f.escrow.connect(f.stranger).timeout(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.arbitrator],
        [toClient + half, toProvider + half, -(PRICE - fee + DEPOSIT), 0n],
      );
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Arbitration, Status.Resolved);
      await expect(tx).to.emit(f.escrow, "DepositsReturned").withArgs(id, half, half);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, toProvider, toClient, fee);
      await expect(tx).not.to.emit(f.escrow, "Ruling");
      await expect(tx)
        .to.emit(f.reputation, "TaskRecorded")
        .withArgs(f.aliceId, f.bobId, Outcome.DisputeSplit, await f.usdt.getAddress(), toProvider + fee, false);
      expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(fee);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(fee);
    });

    it("waits exactly ARBITRATION_TIMEOUT (180 days) after the client's deposit", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      const tx = await f.escrow.connect(f.alice).payDisputeDeposit(id);
      const deadline = (await timestampOf(tx)) + ARBITRATION_TIMEOUT;
      expect(await deadlineOf(f, id)).to.equal(deadline);
      await time.setNextBlockTimestamp(deadline);
      await expect(f.escrow.connect(f.stranger).timeout(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlineNotPassed")
        .withArgs(id, deadline);
    });

    const LIVE: [string, (f: EscrowFixture) => Promise<bigint>][] = [
      ["Open", (f) => post(f)],
      ["Accepted", (f) => postAccepted(f)],
      ["CancelRequested", postCancelRequested],
      ["Submitted", (f) => postSubmitted(f)],
      ["Rejected", postRejected],
      ["Disputed", postDisputed],
      ["Arbitration", postInArbitration],
    ];
    for (const [name, setup] of LIVE) {
      it(`reverts with TaskEscrowDeadlineNotPassed on a ${name} task at its deadline, and works one second later`, async function () {
        const f = await loadFixture(deployEscrow);
        const id = await setup(f);
        const deadline = await deadlineOf(f, id);
        await time.setNextBlockTimestamp(deadline);
        await expect(f.escrow.connect(f.stranger).timeout(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlineNotPassed")
          .withArgs(id, deadline);
        await time.setNextBlockTimestamp(deadline + 1n);
        await expect(f.escrow.connect(f.stranger).timeout(id)).to.emit(f.escrow, "TaskStateChanged");
        expect(await statusOf(f, id)).to.be.greaterThanOrEqual(Status.Completed);
      });
    }

    const TERMINAL: [string, number, (f: EscrowFixture) => Promise<bigint>][] = [
      [
        "Completed",
        Status.Completed,
        async (f) => {
          const id = await postSubmitted(f);
          await f.escrow.connect(f.alice).approve(id);
          return id;
        },
      ],
      [
        "Refunded",
        Status.Refunded,
        async (f) => {
          const id = await postRejected(f);
          await f.escrow.connect(f.bob).agreeRefund(id);
          return id;
        },
      ],
      [
        "Resolved",
        Status.Resolved,
        async (f) => {
          const id = await postInArbitration(f);
          await f.arbitrator.giveRuling((await f.escrow.getDispute(id)).disputeId, Ruling.P50);
          return id;
        },
      ],
      [
        "Closed",
        Status.Closed,
        async (f) => {
          const id = await post(f);
          await f.escrow.connect(f.alice).closeTask(id);
          return id;
        },
      ],
      [
        "Expired",
        Status.Expired,
        async (f) => {
          const id = await post(f);
          await time.increaseTo((await deadlineOf(f, id)) + 1n);
          await f.escrow.timeout(id);
          return id;
        },
      ],
    ];
    for (const [name, status, setup] of TERMINAL) {
      it(`reverts with TaskEscrowWrongStatus on a ${name} task, even long after its deadline`, async function () {
        const f = await loadFixture(deployEscrow);
        const id = await setup(f);
        await time.increase(ARBITRATION_TIMEOUT + DAY);
        await expect(f.escrow.connect(f.stranger).timeout(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
          .withArgs(id, status);
      });
    }

    it("reverts with TaskEscrowUnknownTask for task 0 and an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await post(f);
      for (const id of [0n, 2n, UNKNOWN_TASK]) {
        await expect(f.escrow.connect(f.stranger).timeout(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
          .withArgs(id);
      }
    });
  });

  // ================================================================== raiseDispute
  describe("raiseDispute", function () {
    it("disputes a rejection: pulls the deposit from the caller, opens the client's deposit window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f, { reviewPeriod: 3n * HOUR });
      const tx = await f.escrow.connect(f.bob).raiseDispute(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.arbitrator],
        [0n, -DEPOSIT, DEPOSIT, 0n],
      );
      await expect(tx)
        .to.emit(f.escrow, "DisputeRaised")
        .withArgs(id, await f.arbitrator.getAddress(), DEPOSIT);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Rejected, Status.Disputed);
      await expect(tx).not.to.emit(f.arbitrator, "DisputeCreation");
      const t = await f.escrow.getTask(id);
      expect(t.status).to.equal(Status.Disputed);
      expect(t.amount).to.equal(PRICE);
      expect(t.deadline).to.equal((await timestampOf(tx)) + 3n * HOUR);
      expect(await f.escrow.getDispute(id)).to.deep.equal([await f.arbitrator.getAddress(), DEPOSIT, 0n]);
    });

    it("disputes a cancellation request", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      const tx = await f.escrow.connect(f.bob).raiseDispute(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.escrow], [-DEPOSIT, DEPOSIT]);
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.CancelRequested, Status.Disputed);
      await expect(tx)
        .to.emit(f.escrow, "DisputeRaised")
        .withArgs(id, await f.arbitrator.getAddress(), DEPOSIT);
      expect(await deadlineOf(f, id)).to.equal((await timestampOf(tx)) + DAY);
    });

    it("rounds the deposit down on an odd price", async function () {
      const f = await loadFixture(deployEscrow);
      const price = 123_456_789n; // 5% = 6,172,839.45
      const id = await postRejected(f, { budget: price, maxBudget: price });
      await expect(f.escrow.connect(f.bob).raiseDispute(id))
        .to.emit(f.escrow, "DisputeRaised")
        .withArgs(id, await f.arbitrator.getAddress(), 6_172_839n);
    });

    it("uses the arbitration fee snapshotted when the task was posted", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await f.escrow.setFees(Number(PROTOCOL_FEE_BPS), 1_000);
      await expect(f.escrow.connect(f.bob).raiseDispute(id)).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.escrow],
        [-DEPOSIT, DEPOSIT],
      );
    });

    it("snapshots the arbitrator: a later setArbitrator does not move the dispute", async function () {
      const f = await loadFixture(withRogueArbitrator);
      const id = await postDisputed(f);
      await f.escrow.setArbitrator(await f.rogue.getAddress());
      const tx = await f.escrow.connect(f.alice).payDisputeDeposit(id);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.arbitrator, f.rogue], [DEPOSIT, 0n]);
      await expect(tx)
        .to.emit(f.arbitrator, "DisputeCreation")
        .withArgs(1n, await f.escrow.getAddress());
      expect((await f.escrow.getDispute(id)).arbitrator).to.equal(await f.arbitrator.getAddress());
    });

    it("accepts a dispute at the last second of the decision window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await time.setNextBlockTimestamp(await deadlineOf(f, id));
      await expect(f.escrow.connect(f.bob).raiseDispute(id)).to.emit(f.escrow, "DisputeRaised");
    });

    it("reverts with TaskEscrowDeadlinePassed after the decision window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      const deadline = await deadlineOf(f, id);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.escrow.connect(f.bob).raiseDispute(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowDeadlinePassed after the cancellation window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postCancelRequested(f);
      const deadline = await deadlineOf(f, id);
      await time.increaseTo(deadline + 1n);
      await expect(f.escrow.connect(f.bob).raiseDispute(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowWrongStatus on a delivered, an accepted or an already disputed task", async function () {
      const f = await loadFixture(deployEscrow);
      const submitted = await postSubmitted(f);
      const accepted = await postAccepted(f);
      const disputed = await postDisputed(f);
      for (const [id, status] of [
        [submitted, Status.Submitted],
        [accepted, Status.Accepted],
        [disputed, Status.Disputed],
      ] as const) {
        await expect(f.escrow.connect(f.bob).raiseDispute(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
          .withArgs(id, status);
      }
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).raiseDispute(UNKNOWN_TASK))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the client and for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.alice).raiseDispute(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.alice.address);
      await expect(f.escrow.connect(f.stranger).raiseDispute(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.stranger.address);
    });

    it("reverts with TaskEscrowNoArbitrator on an escrow without arbitrator", async function () {
      const f = await loadFixture(withEscrowWithoutArbitrator);
      const { bare } = f;
      expect((await bare.config())[3]).to.equal(ethers.ZeroAddress);
      await bare.connect(f.alice).postTask(await taskParams(f));
      const id = await bare.taskCount();
      await bare.connect(f.bob).acceptTask(id, PRICE, 2n * DAY);
      await bare.connect(f.bob).submitWork(id, DELIVERABLE, DELIVERABLE_URI);
      await bare.connect(f.alice).reject(id, REASON);
      await expect(bare.connect(f.bob).raiseDispute(id)).to.be.revertedWithCustomError(bare, "TaskEscrowNoArbitrator");
    });

    for (const role of ROLES) {
      it(`lets the provider agent's ${role} dispute, pulling the deposit from that ${role}`, async function () {
        const f = await loadFixture(withActors);
        const id = await postRejected(f);
        const actor = providerActor(f, role);
        const others = [f.bob, f.bobWallet, f.bobOperator].filter((s) => s !== actor);
        await expect(f.escrow.connect(actor).raiseDispute(id)).to.changeTokenBalances(
          f.usdt,
          [actor, ...others, f.escrow],
          [-DEPOSIT, 0n, 0n, DEPOSIT],
        );
      });
    }
  });

  // ================================================================== payDisputeDeposit
  describe("payDisputeDeposit", function () {
    it("sends exactly one deposit to the arbitrator and opens the dispute there", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      const tx = await f.escrow.connect(f.alice).payDisputeDeposit(id);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow, f.arbitrator],
        [-DEPOSIT, 0n, 0n, DEPOSIT],
      );
      const arbitratorAddr = await f.arbitrator.getAddress();
      await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Disputed, Status.Arbitration);
      await expect(tx).to.emit(f.escrow, "Dispute").withArgs(arbitratorAddr, 1n, id, id);
      await expect(tx)
        .to.emit(f.arbitrator, "DisputeCreation")
        .withArgs(1n, await f.escrow.getAddress());
      expect(await f.escrow.getDispute(id)).to.deep.equal([arbitratorAddr, DEPOSIT, 1n]);
      const t = await f.escrow.getTask(id);
      expect(t.status).to.equal(Status.Arbitration);
      expect(t.deadline).to.equal((await timestampOf(tx)) + ARBITRATION_TIMEOUT);
    });

    it("calls createDispute with 5 choices and abi.encode(taskId, clientId, providerId, token, fee)", async function () {
      const f = await loadFixture(deployEscrow);
      const price = 123_456_789n;
      const deposit = (price * ARBITRATION_FEE_BPS) / BPS;
      await post(f); // task 1 stays open, so the dispute is about task 2
      const id = await postDisputed(f, { budget: price, maxBudget: price });
      await f.escrow.connect(f.alice).payDisputeDeposit(id);
      const c = await f.arbitrator.cases(1n);
      expect(c.arbitrable).to.equal(await f.escrow.getAddress());
      expect(c.choices).to.equal(RULING_OPTIONS);
      expect(c.extraData).to.equal(
        ethers.AbiCoder.defaultAbiCoder().encode(
          ["uint256", "uint256", "uint256", "address", "uint256"],
          [id, f.aliceId, f.bobId, await f.usdt.getAddress(), deposit],
        ),
      );
      expect(await f.arbitrator.arbitrationCost(c.extraData)).to.equal(deposit);
    });

    it("gives each dispute the arbitrator's id", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await postInArbitration(f);
      const b = await postDisputed(f);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(b))
        .to.emit(f.escrow, "Dispute")
        .withArgs(await f.arbitrator.getAddress(), 2n, b, b);
      expect((await f.escrow.getDispute(a)).disputeId).to.equal(1n);
      expect((await f.escrow.getDispute(b)).disputeId).to.equal(2n);
    });

    it("reverts with TaskEscrowNotArbitrator when the arbitrator returns a dispute id already in use", async function () {
      const f = await loadFixture(deployEscrow);
      await postInArbitration(f); // dispute 1
      const id = await postDisputed(f);
      await f.arbitrator.setForcedId(1n);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotArbitrator")
        .withArgs(await f.arbitrator.getAddress(), 1n);
      expect(await statusOf(f, id)).to.equal(Status.Disputed);
    });

    it("accepts the deposit at the last second of the window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      await time.setNextBlockTimestamp(await deadlineOf(f, id));
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(id)).to.emit(f.escrow, "Dispute");
    });

    it("reverts with TaskEscrowDeadlinePassed after the window", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      const deadline = await deadlineOf(f, id);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowWrongStatus before a dispute and on a second deposit", async function () {
      const f = await loadFixture(deployEscrow);
      const rejected = await postRejected(f);
      const arbitration = await postInArbitration(f);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(rejected))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(rejected, Status.Rejected);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(arbitration))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(arbitration, Status.Arbitration);
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(UNKNOWN_TASK))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotAuthorized for the provider and for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      await expect(f.escrow.connect(f.bob).payDisputeDeposit(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.bob.address);
      await expect(f.escrow.connect(f.stranger).payDisputeDeposit(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.aliceId, f.stranger.address);
    });

    for (const role of ROLES) {
      it(`lets the client agent's ${role} pay, pulling the deposit from that ${role}`, async function () {
        const f = await loadFixture(withActors);
        const id = await postDisputed(f);
        const actor = clientActor(f, role);
        const others = [f.alice, f.aliceWallet, f.aliceOperator].filter((s) => s !== actor);
        await expect(f.escrow.connect(actor).payDisputeDeposit(id)).to.changeTokenBalances(
          f.usdt,
          [actor, ...others, f.escrow, f.arbitrator],
          [-DEPOSIT, 0n, 0n, 0n, DEPOSIT],
        );
      });
    }
  });

  // ================================================================== submitEvidence
  describe("submitEvidence", function () {
    const STAGES: [string, (f: EscrowFixture) => Promise<bigint>][] = [
      ["Rejected", postRejected],
      ["Disputed", postDisputed],
      ["Arbitration", postInArbitration],
    ];
    for (const [name, setup] of STAGES) {
      it(`emits ERC-1497 Evidence from the client and from the provider on a ${name} task`, async function () {
        const f = await loadFixture(deployEscrow);
        const id = await setup(f);
        const arbitratorAddr = await f.arbitrator.getAddress();
        for (const party of [f.alice, f.bob]) {
          const tx = await f.escrow.connect(party).submitEvidence(id, EVIDENCE);
          await expect(tx).to.emit(f.escrow, "Evidence").withArgs(arbitratorAddr, id, party.address, EVIDENCE);
          await expect(tx).to.changeTokenBalances(f.usdt, [party, f.escrow], [0n, 0n]);
        }
        expect(await statusOf(f, id)).to.equal(Status[name as keyof typeof Status]);
      });
    }

    it("names the dispute's arbitrator even after the configured one changed", async function () {
      const f = await loadFixture(withRogueArbitrator);
      const id = await postDisputed(f);
      await f.escrow.setArbitrator(await f.rogue.getAddress());
      await expect(f.escrow.connect(f.bob).submitEvidence(id, EVIDENCE))
        .to.emit(f.escrow, "Evidence")
        .withArgs(await f.arbitrator.getAddress(), id, f.bob.address, EVIDENCE);
    });

    it("accepts evidence of exactly 512 bytes and reverts with TaskEscrowInputTooLong(513, 512) beyond", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postRejected(f);
      await expect(f.escrow.connect(f.alice).submitEvidence(id, "e".repeat(512))).to.emit(f.escrow, "Evidence");
      await expect(f.escrow.connect(f.alice).submitEvidence(id, "e".repeat(513)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowInputTooLong")
        .withArgs(513n, MAX_URI_BYTES);
    });

    it("reverts with TaskEscrowNotAuthorized for a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postDisputed(f);
      await expect(f.escrow.connect(f.stranger).submitEvidence(id, EVIDENCE))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.stranger.address);
    });

    it("reverts with TaskEscrowWrongStatus on accepted, delivered, cancel-requested and resolved tasks", async function () {
      const f = await loadFixture(deployEscrow);
      const accepted = await postAccepted(f);
      const submitted = await postSubmitted(f);
      const cancel = await postCancelRequested(f);
      const resolved = await postInArbitration(f);
      await f.arbitrator.giveRuling((await f.escrow.getDispute(resolved)).disputeId, Ruling.P50);
      for (const [id, status] of [
        [accepted, Status.Accepted],
        [submitted, Status.Submitted],
        [cancel, Status.CancelRequested],
        [resolved, Status.Resolved],
      ] as const) {
        await expect(f.escrow.connect(f.alice).submitEvidence(id, EVIDENCE))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
          .withArgs(id, status);
      }
    });

    it("reverts with TaskEscrowUnknownTask for an unknown task", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.alice).submitEvidence(UNKNOWN_TASK, EVIDENCE))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN_TASK);
    });

    for (const role of ROLES) {
      it(`accepts evidence from the client agent's and the provider agent's ${role}`, async function () {
        const f = await loadFixture(withActors);
        const id = await postDisputed(f);
        const arbitratorAddr = await f.arbitrator.getAddress();
        for (const actor of [clientActor(f, role), providerActor(f, role)]) {
          await expect(f.escrow.connect(actor).submitEvidence(id, EVIDENCE))
            .to.emit(f.escrow, "Evidence")
            .withArgs(arbitratorAddr, id, actor.address, EVIDENCE);
        }
      });
    }
  });

  // ================================================================== rule
  describe("rule", function () {
    for (const price of [usd(100) + 3n, 123_456_789n]) {
      for (const { ruling, shareBps, outcome } of RULINGS) {
        it(`ruling ${ruling} on a price of ${price}: provider gets ${shareBps} bps minus the fee, deposit split alike, no wei lost`, async function () {
          const f = await loadFixture(deployEscrow);
          const id = await postInArbitration(f, { budget: price, maxBudget: price });
          const { disputeId } = await f.escrow.getDispute(id);
          const { toProvider, toClient, fee } = split(price, shareBps);
          const deposit = (price * ARBITRATION_FEE_BPS) / BPS;
          const depositToProvider = (deposit * shareBps) / BPS;
          const depositToClient = deposit - depositToProvider;
          const deltas = [toClient + depositToClient, toProvider + depositToProvider, -(price - fee + deposit), 0n, 0n];
          expect(deltas.reduce((a, b) => a + b, 0n)).to.equal(0n);

          const tx = await f.arbitrator.giveRuling(disputeId, ruling);
          await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow, f.arbitrator, f.treasury], deltas);
          const arbitratorAddr = await f.arbitrator.getAddress();
          await expect(tx).to.emit(f.escrow, "Ruling").withArgs(arbitratorAddr, disputeId, ruling);
          await expect(tx).to.emit(f.escrow, "TaskStateChanged").withArgs(id, Status.Arbitration, Status.Resolved);
          await expect(tx).to.emit(f.escrow, "DepositsReturned").withArgs(id, depositToProvider, depositToClient);
          await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, toProvider, toClient, fee);
          await expect(tx)
            .to.emit(f.reputation, "TaskRecorded")
            .withArgs(f.aliceId, f.bobId, outcome, await f.usdt.getAddress(), toProvider + fee, false);
          expect(await statusOf(f, id)).to.equal(Status.Resolved);
          expect(await f.escrow.accruedFees(await f.usdt.getAddress())).to.equal(fee);
          // The escrow keeps exactly the fee: nothing lost, nothing stuck.
          expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(fee);
        });
      }
    }

    it("pays usd(100) + 3 under ruling 25% exactly as computed by hand", async function () {
      const f = await loadFixture(deployEscrow);
      const price = usd(100) + 3n;
      const id = await postInArbitration(f, { budget: price, maxBudget: price });
      // share 25,000,000 (25,000,000.75 down), fee 250,000, client 75,000,003; deposit 5,000,000 -> 1,250,000 / 3,750,000.
      const tx = await f.arbitrator.giveRuling((await f.escrow.getDispute(id)).disputeId, Ruling.P25);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow],
        [75_000_003n + 3_750_000n, 24_750_000n + 1_250_000n, -(price + 5_000_000n - 250_000n)],
      );
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 24_750_000n, 75_000_003n, 250_000n);
      await expect(tx).to.emit(f.escrow, "DepositsReturned").withArgs(id, 1_250_000n, 3_750_000n);
    });

    it("records dispute outcomes on both agents' records", async function () {
      const f = await loadFixture(deployEscrow);
      const won = await postInArbitration(f);
      const lost = await postInArbitration(f);
      const splitTask = await postInArbitration(f);
      await f.arbitrator.giveRuling((await f.escrow.getDispute(won)).disputeId, Ruling.P100);
      await f.arbitrator.giveRuling((await f.escrow.getDispute(lost)).disputeId, Ruling.P0);
      await f.arbitrator.giveRuling((await f.escrow.getDispute(splitTask)).disputeId, Ruling.P75);
      expect(await countersOf(f, f.bobId)).to.deep.equal({
        ...NO_COUNTERS,
        disputesWon: 1n,
        disputesLost: 1n,
        disputesSplit: 1n,
      });
      expect(await countersOf(f, f.aliceId)).to.deep.equal({
        ...NO_COUNTERS,
        disputesWon: 1n,
        disputesLost: 1n,
        disputesSplit: 1n,
        tasksAsClient: 3n,
      });
      // Weighed by the value paid (review finding RP-1): 100% + 0% + 75% of the price.
      expect(await f.reputation.feedbackRights(f.bobId, f.alice.address)).to.deep.equal([
        3n,
        PRICE + (PRICE * 3n) / 4n,
      ]);
    });

    it("pays the wallets both agents have at ruling time", async function () {
      const f = await loadFixture(deployEscrow);
      const signers = await ethers.getSigners();
      const [aliceWallet, bobWallet] = [signers[9], signers[11]];
      const id = await postInArbitration(f);
      await setWallet(f, f.aliceId, f.alice, aliceWallet);
      await setWallet(f, f.bobId, f.bob, bobWallet);
      const { toProvider, toClient } = split(PRICE, 5_000n);
      await expect(
        f.arbitrator.giveRuling((await f.escrow.getDispute(id)).disputeId, Ruling.P50),
      ).to.changeTokenBalances(
        f.usdt,
        [f.alice, aliceWallet, f.bob, bobWallet],
        [0n, toClient + DEPOSIT / 2n, 0n, toProvider + DEPOSIT / 2n],
      );
    });

    it("reverts with TaskEscrowNotArbitrator when another arbitrator calls with the dispute's id", async function () {
      const f = await loadFixture(withRogueArbitrator);
      const id = await postInArbitration(f);
      const { disputeId } = await f.escrow.getDispute(id);
      await expect(f.rogue.ruleOn(await f.escrow.getAddress(), disputeId, Ruling.P100))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotArbitrator")
        .withArgs(await f.rogue.getAddress(), disputeId);
    });

    it("reverts with TaskEscrowNotArbitrator when the right arbitrator names an unknown dispute", async function () {
      const f = await loadFixture(deployEscrow);
      await postInArbitration(f);
      await expect(f.arbitrator.ruleOn(await f.escrow.getAddress(), UNKNOWN_TASK, Ruling.P100))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotArbitrator")
        .withArgs(await f.arbitrator.getAddress(), UNKNOWN_TASK);
    });

    it("reverts with TaskEscrowNotArbitrator when a party calls rule directly", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postInArbitration(f);
      const { disputeId } = await f.escrow.getDispute(id);
      for (const who of [f.bob, f.admin]) {
        await expect(f.escrow.connect(who).rule(disputeId, Ruling.P100))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotArbitrator")
          .withArgs(who.address, disputeId);
      }
    });

    it("reverts with TaskEscrowBadRuling for a ruling above 5", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postInArbitration(f);
      const { disputeId } = await f.escrow.getDispute(id);
      for (const ruling of [6n, ethers.MaxUint256]) {
        await expect(f.arbitrator.giveRuling(disputeId, ruling))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadRuling")
          .withArgs(ruling);
      }
      expect(await statusOf(f, id)).to.equal(Status.Arbitration);
    });

    it("reverts with TaskEscrowWrongStatus on a second ruling (cannot pay twice)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postInArbitration(f);
      const { disputeId } = await f.escrow.getDispute(id);
      await f.arbitrator.giveRuling(disputeId, Ruling.P100);
      await expect(f.arbitrator.giveRuling(disputeId, Ruling.P0))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Resolved);
    });

    it("reverts with TaskEscrowWrongStatus for a ruling after the arbitration timed out", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postInArbitration(f);
      const { disputeId } = await f.escrow.getDispute(id);
      await time.increaseTo(await deadlineOf(f, id));
      await f.escrow.connect(f.stranger).timeout(id);
      await expect(f.arbitrator.giveRuling(disputeId, Ruling.P100))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Resolved);
    });
  });

  // ================================================================== withdraw
  describe("withdraw", function () {
    it("lets a blacklisted provider withdraw its credited payment to another address", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      const approval = await f.escrow.connect(f.alice).approve(id);
      await expect(approval)
        .to.emit(f.escrow, "PaymentCredited")
        .withArgs(f.blkAddr, f.bob.address, PRICE - FEE);
      await expect(approval).to.changeTokenBalances(f.blk, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(PRICE - FEE);

      const tx = await f.escrow.connect(f.bob).withdraw(f.blkAddr, f.carol.address);
      await expect(tx).to.changeTokenBalances(f.blk, [f.bob, f.carol, f.escrow], [0n, PRICE - FEE, -(PRICE - FEE)]);
      await expect(tx)
        .to.emit(f.escrow, "CreditWithdrawn")
        .withArgs(f.blkAddr, f.bob.address, f.carol.address, PRICE - FEE);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(0n);
      expect(await f.blk.balanceOf(await f.escrow.getAddress())).to.equal(FEE);
    });

    it("adds up credits from several payouts and pays them in one withdrawal", async function () {
      const f = await loadFixture(withBlacklist);
      const a = await postRejected(f, { token: f.blkAddr });
      const b = await postAccepted(f, { token: f.blkAddr, budget: usd(40), maxBudget: usd(40) });
      await f.blk.setBlacklisted(f.alice.address, true);
      await f.escrow.connect(f.bob).agreeRefund(a);
      await time.increaseTo((await deadlineOf(f, b)) + 1n);
      await f.escrow.connect(f.stranger).timeout(b);
      expect(await f.escrow.creditOf(f.blkAddr, f.alice.address)).to.equal(PRICE + usd(40));
      await f.blk.setBlacklisted(f.alice.address, false);
      await expect(f.escrow.connect(f.alice).withdraw(f.blkAddr, f.alice.address)).to.changeTokenBalances(
        f.blk,
        [f.alice, f.escrow],
        [PRICE + usd(40), -(PRICE + usd(40))],
      );
    });

    it("reverts with ProtocolZeroAddress when `to` is the zero address", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      await f.escrow.connect(f.alice).approve(id);
      await expect(f.escrow.connect(f.bob).withdraw(f.blkAddr, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.escrow,
        "ProtocolZeroAddress",
      );
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(PRICE - FEE);
    });

    it("reverts with TaskEscrowNothingToWithdraw without credit, on a second withdrawal and for another token", async function () {
      const f = await loadFixture(withBlacklist);
      const usdtAddr = await f.usdt.getAddress();
      await expect(f.escrow.connect(f.stranger).withdraw(f.blkAddr, f.stranger.address))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNothingToWithdraw")
        .withArgs(f.blkAddr, f.stranger.address);
      const id = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      await f.escrow.connect(f.alice).approve(id);
      await expect(f.escrow.connect(f.bob).withdraw(usdtAddr, f.carol.address))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNothingToWithdraw")
        .withArgs(usdtAddr, f.bob.address);
      await f.escrow.connect(f.bob).withdraw(f.blkAddr, f.carol.address);
      await expect(f.escrow.connect(f.bob).withdraw(f.blkAddr, f.carol.address))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNothingToWithdraw")
        .withArgs(f.blkAddr, f.bob.address);
    });

    it("keeps the credit when the transfer to `to` fails", async function () {
      const f = await loadFixture(withBlacklist);
      const id = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      await f.escrow.connect(f.alice).approve(id);
      await expect(f.escrow.connect(f.bob).withdraw(f.blkAddr, f.bob.address))
        .to.be.revertedWithCustomError(f.blk, "MockBlacklistTokenBlacklisted")
        .withArgs(f.bob.address);
      expect(await f.escrow.creditOf(f.blkAddr, f.bob.address)).to.equal(PRICE - FEE);
    });
  });

  // ================================================================== sweepFees
  describe("sweepFees", function () {
    it("sends the accrued fees to the treasury; anyone may call", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      await f.escrow.connect(f.alice).approve(await postSubmitted(f));
      await f.escrow.connect(f.alice).approve(await postSubmitted(f, { budget: usd(50), maxBudget: usd(50) }));
      const fees = FEE + usd("0.5");
      expect(await f.escrow.accruedFees(usdtAddr)).to.equal(fees);
      const tx = await f.escrow.connect(f.stranger).sweepFees(usdtAddr);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.treasury, f.stranger, f.escrow], [fees, 0n, -fees]);
      await expect(tx).to.emit(f.escrow, "FeesSwept").withArgs(usdtAddr, f.treasury.address, fees);
      expect(await f.escrow.accruedFees(usdtAddr)).to.equal(0n);
      expect(await f.usdt.balanceOf(await f.escrow.getAddress())).to.equal(0n);
    });

    it("keeps fees per token", async function () {
      const f = await loadFixture(deployEscrow);
      const [usdtAddr, usdgAddr] = [await f.usdt.getAddress(), await f.usdg.getAddress()];
      await f.escrow.connect(f.alice).approve(await postSubmitted(f));
      await f.escrow
        .connect(f.alice)
        .approve(await postSubmitted(f, { token: usdgAddr, budget: usd(20), maxBudget: usd(20) }));
      expect(await f.escrow.accruedFees(usdgAddr)).to.equal(usd("0.2"));
      await expect(f.escrow.sweepFees(usdgAddr)).to.changeTokenBalances(
        f.usdg,
        [f.treasury, f.escrow],
        [usd("0.2"), -usd("0.2")],
      );
      expect(await f.escrow.accruedFees(usdtAddr)).to.equal(FEE);
    });

    it("sends to the treasury current at sweep time", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      await f.escrow.connect(f.alice).approve(await postSubmitted(f));
      await f.escrow.setTreasury(f.dave.address);
      const tx = await f.escrow.sweepFees(usdtAddr);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.dave, f.treasury], [FEE, 0n]);
      await expect(tx).to.emit(f.escrow, "FeesSwept").withArgs(usdtAddr, f.dave.address, FEE);
    });

    it("reverts with TaskEscrowNothingToWithdraw(token, treasury) when nothing accrued, or after a sweep", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      await expect(f.escrow.sweepFees(usdtAddr))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNothingToWithdraw")
        .withArgs(usdtAddr, f.treasury.address);
      await f.escrow.connect(f.alice).approve(await postSubmitted(f));
      await f.escrow.sweepFees(usdtAddr);
      await expect(f.escrow.connect(f.stranger).sweepFees(usdtAddr))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNothingToWithdraw")
        .withArgs(usdtAddr, f.treasury.address);
    });
  });

  // ================================================================== pause
  describe("while paused", function () {
    /** Tasks in every live state, a blacklisted provider's credit and accrued fees; then the escrow is paused. */
    async function pausedFixture() {
      const f = await withBlacklist();
      const open = await post(f);
      const accepted = await postAccepted(f);
      const submitted = await postSubmitted(f);
      const rejected = await postRejected(f);
      const cancel = await postCancelRequested(f);
      const disputed = await postDisputed(f);
      const arbitration = await postInArbitration(f);
      const credited = await postSubmitted(f, { token: f.blkAddr });
      await f.blk.setBlacklisted(f.bob.address, true);
      await f.escrow.connect(f.alice).approve(credited);
      await f.escrow.pause();
      return { ...f, open, accepted, submitted, rejected, cancel, disputed, arbitration };
    }

    it("is paused: posting reverts with EnforcedPause", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f))).to.be.revertedWithCustomError(
        f.escrow,
        "EnforcedPause",
      );
    });

    it("still lets the provider deliver", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.bob).submitWork(f.accepted, DELIVERABLE, DELIVERABLE_URI))
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(f.accepted, Status.Accepted, Status.Submitted);
    });

    it("still lets the client approve", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).approve(f.submitted)).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.escrow],
        [PRICE - FEE, -(PRICE - FEE)],
      );
    });

    it("still lets the client reject", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).reject(f.submitted, REASON))
        .to.emit(f.escrow, "WorkRejected")
        .withArgs(f.submitted, REASON);
    });

    it("still lets the provider agree to refund", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.bob).agreeRefund(f.rejected)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [PRICE, -PRICE],
      );
    });

    it("still lets the client close an open task and cancel an accepted one", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).closeTask(f.open)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [PRICE, -PRICE],
      );
      await expect(f.escrow.connect(f.alice).closeTask(f.accepted))
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(f.accepted, Status.Accepted, Status.CancelRequested);
    });

    it("still lets anyone time out a task", async function () {
      const f = await loadFixture(pausedFixture);
      await time.increaseTo((await deadlineOf(f, f.cancel)) + 1n);
      await expect(f.escrow.connect(f.stranger).timeout(f.cancel)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [PRICE, -PRICE],
      );
    });

    it("still lets the provider dispute and the client pay its deposit", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.bob).raiseDispute(f.rejected)).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.escrow],
        [-DEPOSIT, DEPOSIT],
      );
      await expect(f.escrow.connect(f.alice).payDisputeDeposit(f.disputed)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.arbitrator],
        [-DEPOSIT, DEPOSIT],
      );
    });

    it("still accepts evidence and the arbitrator's ruling", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).submitEvidence(f.arbitration, EVIDENCE)).to.emit(f.escrow, "Evidence");
      const { disputeId } = await f.escrow.getDispute(f.arbitration);
      await expect(f.arbitrator.giveRuling(disputeId, Ruling.P100)).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.escrow],
        [PRICE - FEE + DEPOSIT, -(PRICE - FEE + DEPOSIT)],
      );
    });

    it("still lets a credited account withdraw and anyone sweep fees", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.bob).withdraw(f.blkAddr, f.carol.address)).to.changeTokenBalances(
        f.blk,
        [f.carol, f.escrow],
        [PRICE - FEE, -(PRICE - FEE)],
      );
      await expect(f.escrow.connect(f.stranger).sweepFees(f.blkAddr)).to.changeTokenBalances(
        f.blk,
        [f.treasury, f.escrow],
        [FEE, -FEE],
      );
    });
  });
});
