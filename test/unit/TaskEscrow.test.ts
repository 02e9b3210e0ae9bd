import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  MockERC1271Wallet__factory,
  MockFeeOnTransferToken__factory,
  TaskEscrow__factory,
  type TaskEscrow,
} from "../../typechain-types";
import {
  AGREEMENT_TYPES,
  ARBITRATION_FEE_BPS,
  CAPABILITY,
  DAY,
  HOUR,
  MIN_BUDGET,
  Mode,
  PROTOCOL_FEE_BPS,
  SPEC_HASH,
  Status,
  deployEscrow,
  escrowDomain,
  post,
  signAgreement,
  taskParams,
  type AgreementValue,
  type EscrowFixture,
} from "../fixtures/escrow";
import { DEFAULT_ADMIN_ROLE, PARAMETER_ROLE, PAUSER_ROLE, REPORTER_ROLE } from "../fixtures/system";
import { Outcome, malleate, now, signAgentWallet, usd } from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const MAX_PROTOCOL_FEE_BPS = 1_000n;
const MAX_ARBITRATION_FEE_BPS = 1_000n;
const MIN_PERIOD = HOUR;
const MAX_PERIOD = 365n * DAY;
const MAX_PROPOSALS = 8n;
const ARBITRATION_TIMEOUT = 180n * DAY;
const RULING_OPTIONS = 5n;
const MAX_URI_BYTES = 512n;
const NEUTRAL_SCORE = 5_000n;
const UINT96_MAX = 2n ** 96n - 1n;
const UNKNOWN = 99n;
const QUOTED_TASK = 1;
const SPEC_URI = "ipfs://spec";
const PROPOSAL_HASH = ethers.id("proposal");
const AGREEMENT_TYPE =
  "Agreement(uint256 clientId,uint256 providerId,address token,uint256 price,uint32 deliveryDuration," +
  "uint32 reviewPeriod,uint256 parentTaskId,bytes32 specHash,uint256 nonce,uint256 expiry)";

// ---------------------------------------------------------------------- helpers

/** A task as a plain object (every field of ITaskEscrow.Task), for deep equality. */
async function taskOf(escrow: TaskEscrow, taskId: bigint) {
  const t = await escrow.getTask(taskId);
  return {
    token: t.token,
    amount: t.amount,
    clientId: t.clientId,
    providerId: t.providerId,
    status: t.status,
    mode: t.mode,
    feeBps: t.feeBps,
    arbitrationFeeBps: t.arbitrationFeeBps,
    deadline: t.deadline,
    deliveryDuration: t.deliveryDuration,
    reviewPeriod: t.reviewPeriod,
    proposals: t.proposals,
    offer: t.offer,
    parentTaskId: t.parentTaskId,
    minScoreBps: t.minScoreBps,
    capability: t.capability,
  };
}

type TaskView = Awaited<ReturnType<typeof taskOf>>;

/** The stored task of a default `post` (direct alice → bob, 100 USDT), with overrides. */
function expectedTask(token: string, deadline: bigint, over: Partial<TaskView> = {}): TaskView {
  return {
    token,
    amount: usd(100),
    clientId: 1n,
    providerId: 2n,
    status: BigInt(Status.Open),
    mode: BigInt(Mode.Direct),
    feeBps: PROTOCOL_FEE_BPS,
    arbitrationFeeBps: ARBITRATION_FEE_BPS,
    deadline,
    deliveryDuration: 2n * DAY,
    reviewPeriod: DAY,
    proposals: 0n,
    offer: 0n,
    parentTaskId: 0n,
    minScoreBps: 0n,
    capability: ethers.ZeroHash,
    ...over,
  };
}

/** Pins the timestamp of the next block `offset` seconds after the latest one and returns it. */
async function pinNext(offset = 100n): Promise<bigint> {
  const t = BigInt(await time.latest()) + offset;
  await time.setNextBlockTimestamp(t);
  return t;
}

/** Moves the chain so that the next transaction is mined after `deadline`. */
async function passDeadline(deadline: bigint) {
  await time.increaseTo(deadline + 1n);
}

/** Alice posts an open bidding task: budget 100, maximum budget 200 USDT. */
function postBidding(f: EscrowFixture, over: Partial<Parameters<TaskEscrow["postTask"]>[0]> = {}) {
  return post(f, { mode: Mode.Bidding, providerId: 0n, budget: usd(100), maxBudget: usd(200), ...over });
}

/** Alice posts an open auto-match task for CAPABILITY: budget 80, maximum budget 100 USDT. */
function postAuto(f: EscrowFixture, over: Partial<Parameters<TaskEscrow["postTask"]>[0]> = {}) {
  return post(f, { mode: Mode.AutoMatch, providerId: 0n, budget: usd(80), maxBudget: usd(100), ...over });
}

/** Carol's agent hires alice's agent directly (a parent task for alice's sub-tasks); returns its id. */
async function postAsCarolToAlice(f: EscrowFixture) {
  await f.escrow.connect(f.carol).postTask(await taskParams(f, { clientId: f.carolId, providerId: f.aliceId }));
  return f.escrow.taskCount();
}

/** The controller `owner` lists a quoted service of `agentId`; returns its id. */
async function listQuoted(f: EscrowFixture, owner: HardhatEthersSigner, agentId: bigint, capability = CAPABILITY) {
  await f.registry
    .connect(owner)
    .listService(agentId, capability, QUOTED_TASK, ethers.ZeroAddress, 0, `https://${agentId}.example/mcp`);
  return f.registry.serviceCount();
}

/** Sets `wallet` as agent wallet of `agentId` (owned by `owner`). */
async function setWallet(f: EscrowFixture, owner: HardhatEthersSigner, agentId: bigint, wallet: HardhatEthersSigner) {
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(f.registry, wallet, agentId, wallet.address, owner.address, deadline);
  await f.registry.connect(owner).setAgentWallet(agentId, wallet.address, deadline, signature);
}

/** An agreement alice (#1) hires bob (#2) with: 100 USDT, 2 days, nonce 1, valid for an hour. */
async function agreement(f: EscrowFixture, over: Partial<AgreementValue> = {}): Promise<AgreementValue> {
  return {
    clientId: f.aliceId,
    providerId: f.bobId,
    token: await f.usdt.getAddress(),
    price: usd(100),
    deliveryDuration: 2n * DAY,
    reviewPeriod: DAY,
    parentTaskId: 0n,
    specHash: SPEC_HASH,
    nonce: 1n,
    expiry: (await now()) + HOUR,
    ...over,
  };
}

/** `from` (alice by default) submits agreement `a` with `signer`'s `signature`. */
function hire(f: EscrowFixture, a: AgreementValue, signer: string, signature: string, from = f.alice) {
  return f.escrow.connect(from).hireWithAgreement(a, CAPABILITY, SPEC_URI, signer, signature);
}

// ---------------------------------------------------------------------- fixtures

/**
 * deployEscrow, plus:
 *  - alice's agent (#1) has `aliceWallet` as agent wallet (funded, escrow approved) and `operator`
 *    as operator with a USDT limit of 100 per transaction and 150 per rolling day;
 *  - bob's agent (#2) has `bobWallet` as agent wallet and `bobOperator` as operator;
 *  - alice owns a second agent, #5.
 */
async function actorsFixture() {
  const f = await deployEscrow();
  const signers = await ethers.getSigners();
  const [aliceWallet, bobWallet, bobOperator] = [signers[9], signers[10], signers[11]];
  const usdtAddr = await f.usdt.getAddress();
  await setWallet(f, f.alice, f.aliceId, aliceWallet);
  await setWallet(f, f.bob, f.bobId, bobWallet);
  const expiry = (await now()) + 30n * DAY;
  const terms = { expiry, minScoreBps: 0, allowListOnly: false };
  await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, terms);
  await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, usdtAddr, {
    perTxCap: usd(100),
    periodCap: usd(150),
    period: DAY,
    rolling: true,
  });
  await f.registry.connect(f.bob).setOperator(f.bobId, bobOperator.address, terms);
  await f.usdt.mint(aliceWallet.address, usd(1_000));
  await f.usdt.connect(aliceWallet).approve(await f.escrow.getAddress(), ethers.MaxUint256);
  await f.registry.connect(f.alice).getFunction("register(string)")("ipfs://alice-2");
  return { ...f, usdtAddr, aliceWallet, bobWallet, bobOperator, operatorExpiry: expiry, alice2Id: 5n };
}

/** deployEscrow, and bob's score lowered to 2,500 by one refunded task (reporter holds REPORTER_ROLE). */
async function lowScoreFixture() {
  const f = await deployEscrow();
  await f.reputation.grantRole(REPORTER_ROLE, f.reporter.address);
  await f.reputation
    .connect(f.reporter)
    .recordTask(f.carolId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), usd(10));
  return f;
}

/** deployEscrow, and bob lists a quoted service (#1) for CAPABILITY. */
async function serviceFixture() {
  const f = await deployEscrow();
  const serviceId = await listQuoted(f, f.bob, f.bobId);
  return { ...f, serviceId };
}

/**
 * serviceFixture, then, before the escrow is paused: a direct task #1 alice → bob with bob's
 * counter-proposal (90 USDT, 2 days), a bidding task #2 with bob's bid (150 USDT, 1 day), an
 * auto-match task #3 and a direct task #4 alice → carol.
 */
async function pausedFixture() {
  const f = await serviceFixture();
  const direct = await post(f);
  await f.escrow.connect(f.bob).counterPropose(direct, usd(90), 2n * DAY);
  const bidding = await postBidding(f);
  await f.escrow.connect(f.bob).placeBid(bidding, f.bobId, usd(150), DAY, PROPOSAL_HASH);
  const auto = await postAuto(f);
  const toClose = await post(f, { providerId: f.carolId });
  await f.escrow.pause();
  return { ...f, direct, bidding, auto, toClose };
}

// ---------------------------------------------------------------------- tests

describe("TaskEscrow", function () {
  describe("initialize and constants", function () {
    it("configures the proxy: registry, reputation, treasury, arbitrator and fees", async function () {
      const { escrow, registry, reputation, treasury, arbitrator } = await loadFixture(deployEscrow);
      expect([...(await escrow.config())]).to.deep.equal([
        await registry.getAddress(),
        await reputation.getAddress(),
        treasury.address,
        await arbitrator.getAddress(),
        PROTOCOL_FEE_BPS,
        ARBITRATION_FEE_BPS,
      ]);
    });

    it("gives the admin every administrative role and starts unpaused and empty", async function () {
      const { escrow, admin, stranger } = await loadFixture(deployEscrow);
      for (const role of [DEFAULT_ADMIN_ROLE, ethers.id("UPGRADER_ROLE"), PAUSER_ROLE, PARAMETER_ROLE]) {
        expect(await escrow.hasRole(role, admin.address)).to.equal(true);
        expect(await escrow.hasRole(role, stranger.address)).to.equal(false);
      }
      expect(await escrow.paused()).to.equal(false);
      expect(await escrow.taskCount()).to.equal(0n);
    });

    it("exposes VERSION 1.0.0 and its constants", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      expect(await escrow.VERSION()).to.equal("1.0.0");
      expect(await escrow.MAX_PROTOCOL_FEE_BPS()).to.equal(MAX_PROTOCOL_FEE_BPS);
      expect(await escrow.MAX_ARBITRATION_FEE_BPS()).to.equal(MAX_ARBITRATION_FEE_BPS);
      expect(await escrow.MIN_PERIOD()).to.equal(MIN_PERIOD);
      expect(await escrow.MAX_PERIOD()).to.equal(MAX_PERIOD);
      expect(await escrow.MAX_PROPOSALS()).to.equal(MAX_PROPOSALS);
      expect(await escrow.ARBITRATION_TIMEOUT()).to.equal(ARBITRATION_TIMEOUT);
      expect(await escrow.RULING_OPTIONS()).to.equal(RULING_OPTIONS);
      expect(await escrow.AGREEMENT_TYPEHASH()).to.equal(ethers.id(AGREEMENT_TYPE));
      expect(ethers.TypedDataEncoder.from(AGREEMENT_TYPES).encodeType("Agreement")).to.equal(AGREEMENT_TYPE);
      expect(await escrow.PARAMETER_ROLE()).to.equal(PARAMETER_ROLE);
    });

    it("reverts with InvalidInitialization when initialize is called again", async function () {
      const { escrow, registry, reputation, stranger } = await loadFixture(deployEscrow);
      await expect(
        escrow
          .connect(stranger)
          .initialize(stranger.address, await registry.getAddress(), await reputation.getAddress(), stranger, 0, 0),
      ).to.be.revertedWithCustomError(escrow, "InvalidInitialization");
    });

    it("initialises a fresh proxy, emitting TreasurySet and FeesSet, without an arbitrator", async function () {
      const { escrow, escrowImpl, registry, reputation, stranger, admin } = await loadFixture(deployEscrow);
      const data = escrow.interface.encodeFunctionData("initialize", [
        stranger.address,
        await registry.getAddress(),
        await reputation.getAddress(),
        admin.address,
        1_000,
        1_000,
      ]);
      const proxy = await ethers.deployContract("ERC1967Proxy", [escrowImpl, data]);
      const fresh = TaskEscrow__factory.connect(await proxy.getAddress(), admin);
      await expect(proxy.deploymentTransaction()!).to.emit(fresh, "TreasurySet").withArgs(admin.address);
      await expect(proxy.deploymentTransaction()!).to.emit(fresh, "FeesSet").withArgs(1_000, 1_000);
      expect([...(await fresh.config())]).to.deep.equal([
        await registry.getAddress(),
        await reputation.getAddress(),
        admin.address,
        ethers.ZeroAddress,
        1_000n,
        1_000n,
      ]);
      expect(await fresh.hasRole(DEFAULT_ADMIN_ROLE, stranger.address)).to.equal(true);
      expect(await fresh.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(false);
    });

    it("reverts with ProtocolZeroAddress for a zero admin, registry, reputation or treasury", async function () {
      const { escrow, escrowImpl, registry, reputation, admin } = await loadFixture(deployEscrow);
      const good = [admin.address, await registry.getAddress(), await reputation.getAddress(), admin.address];
      for (let i = 0; i < good.length; i++) {
        const addrs = good.map((a, j) => (j === i ? ethers.ZeroAddress : a));
        const data = escrow.interface.encodeFunctionData("initialize", [
          addrs[0],
          addrs[1],
          addrs[2],
          addrs[3],
          100,
          500,
        ]);
        await expect(ethers.deployContract("ERC1967Proxy", [escrowImpl, data])).to.be.revertedWithCustomError(
          escrow,
          "ProtocolZeroAddress",
        );
      }
    });

    it("reverts with TaskEscrowBadParameter when initial fees exceed their caps", async function () {
      const { escrow, escrowImpl, registry, reputation, admin } = await loadFixture(deployEscrow);
      for (const [fee, arbFee] of [
        [1_001, 0],
        [0, 1_001],
      ]) {
        const data = escrow.interface.encodeFunctionData("initialize", [
          admin.address,
          await registry.getAddress(),
          await reputation.getAddress(),
          admin.address,
          fee,
          arbFee,
        ]);
        await expect(ethers.deployContract("ERC1967Proxy", [escrowImpl, data])).to.be.revertedWithCustomError(
          escrow,
          "TaskEscrowBadParameter",
        );
      }
    });
  });

  // ------------------------------------------------------------------ admin

  describe("setToken", function () {
    it("allow-lists a token with its minimum budget and emits TokenSet", async function () {
      const { escrow, okb } = await loadFixture(deployEscrow);
      const okbAddr = await okb.getAddress();
      expect(await escrow.minBudget(okbAddr)).to.equal(0n);
      await expect(escrow.setToken(okbAddr, 5n)).to.emit(escrow, "TokenSet").withArgs(okbAddr, 5n);
      expect(await escrow.minBudget(okbAddr)).to.equal(5n);
    });

    it("changes a minimum budget, which applies to new posts", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      await f.escrow.setToken(usdtAddr, usd(200));
      expect(await f.escrow.minBudget(usdtAddr)).to.equal(usd(200));
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(usd(100));
    });

    it("removes a token with a zero minimum: posting in it reverts, live tasks are untouched", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      const id = await post(f);
      await expect(f.escrow.setToken(usdtAddr, 0)).to.emit(f.escrow, "TokenSet").withArgs(usdtAddr, 0n);
      expect(await f.escrow.minBudget(usdtAddr)).to.equal(0n);
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTokenNotAllowed")
        .withArgs(usdtAddr);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY)).to.emit(f.escrow, "TaskAssigned");
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      await expect(escrow.setToken(ethers.ZeroAddress, 1)).to.be.revertedWithCustomError(escrow, "ProtocolZeroAddress");
    });

    it("reverts with AccessControlUnauthorizedAccount without PARAMETER_ROLE", async function () {
      const { escrow, okb, stranger } = await loadFixture(deployEscrow);
      await expect(escrow.connect(stranger).setToken(await okb.getAddress(), 1))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
    });

    it("lets a PARAMETER_ROLE holder who is not admin set it", async function () {
      const { escrow, okb, stranger } = await loadFixture(deployEscrow);
      await escrow.grantRole(PARAMETER_ROLE, stranger.address);
      await expect(escrow.connect(stranger).setToken(await okb.getAddress(), 7))
        .to.emit(escrow, "TokenSet")
        .withArgs(await okb.getAddress(), 7n);
    });
  });

  describe("setFees", function () {
    it("sets both fees up to their caps and emits FeesSet", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      await expect(escrow.setFees(MAX_PROTOCOL_FEE_BPS, MAX_ARBITRATION_FEE_BPS))
        .to.emit(escrow, "FeesSet")
        .withArgs(MAX_PROTOCOL_FEE_BPS, MAX_ARBITRATION_FEE_BPS);
      const config = await escrow.config();
      expect(config[4]).to.equal(MAX_PROTOCOL_FEE_BPS);
      expect(config[5]).to.equal(MAX_ARBITRATION_FEE_BPS);
      await expect(escrow.setFees(0, 0)).to.emit(escrow, "FeesSet").withArgs(0, 0);
      expect((await escrow.config())[4]).to.equal(0n);
    });

    it("reverts with TaskEscrowBadParameter above MAX_PROTOCOL_FEE_BPS or MAX_ARBITRATION_FEE_BPS", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      await expect(escrow.setFees(MAX_PROTOCOL_FEE_BPS + 1n, 0)).to.be.revertedWithCustomError(
        escrow,
        "TaskEscrowBadParameter",
      );
      await expect(escrow.setFees(0, MAX_ARBITRATION_FEE_BPS + 1n)).to.be.revertedWithCustomError(
        escrow,
        "TaskEscrowBadParameter",
      );
    });

    it("does not change the fees snapshotted by a task posted before", async function () {
      const f = await loadFixture(deployEscrow);
      const before = await post(f);
      await f.escrow.setFees(200, 700);
      const after = await post(f);
      expect((await f.escrow.getTask(before)).feeBps).to.equal(PROTOCOL_FEE_BPS);
      expect((await f.escrow.getTask(before)).arbitrationFeeBps).to.equal(ARBITRATION_FEE_BPS);
      expect((await f.escrow.getTask(after)).feeBps).to.equal(200n);
      expect((await f.escrow.getTask(after)).arbitrationFeeBps).to.equal(700n);
    });

    it("reverts with AccessControlUnauthorizedAccount without PARAMETER_ROLE", async function () {
      const { escrow, stranger, admin } = await loadFixture(deployEscrow);
      await expect(escrow.connect(stranger).setFees(1, 1))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
      await escrow.renounceRole(PARAMETER_ROLE, admin.address);
      await expect(escrow.setFees(1, 1))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, PARAMETER_ROLE);
    });
  });

  describe("setTreasury", function () {
    it("sets the treasury and emits TreasurySet", async function () {
      const { escrow, stranger } = await loadFixture(deployEscrow);
      await expect(escrow.setTreasury(stranger.address)).to.emit(escrow, "TreasurySet").withArgs(stranger.address);
      expect((await escrow.config())[2]).to.equal(stranger.address);
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      await expect(escrow.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(escrow, "ProtocolZeroAddress");
    });

    it("reverts with AccessControlUnauthorizedAccount without DEFAULT_ADMIN_ROLE, even with PARAMETER_ROLE", async function () {
      const { escrow, stranger } = await loadFixture(deployEscrow);
      await escrow.grantRole(PARAMETER_ROLE, stranger.address);
      await expect(escrow.connect(stranger).setTreasury(stranger.address))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("setArbitrator", function () {
    it("sets the arbitrator and emits ArbitratorSet", async function () {
      const { escrow, stranger } = await loadFixture(deployEscrow);
      await expect(escrow.setArbitrator(stranger.address)).to.emit(escrow, "ArbitratorSet").withArgs(stranger.address);
      expect((await escrow.config())[3]).to.equal(stranger.address);
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      await expect(escrow.setArbitrator(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        escrow,
        "ProtocolZeroAddress",
      );
    });

    it("reverts with AccessControlUnauthorizedAccount without DEFAULT_ADMIN_ROLE, even with PARAMETER_ROLE", async function () {
      const { escrow, stranger } = await loadFixture(deployEscrow);
      await escrow.grantRole(PARAMETER_ROLE, stranger.address);
      await expect(escrow.connect(stranger).setArbitrator(stranger.address))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("pause / unpause", function () {
    it("pauses and unpauses with PAUSER_ROLE, emitting Paused and Unpaused", async function () {
      const { escrow, admin } = await loadFixture(deployEscrow);
      await expect(escrow.pause()).to.emit(escrow, "Paused").withArgs(admin.address);
      expect(await escrow.paused()).to.equal(true);
      await expect(escrow.unpause()).to.emit(escrow, "Unpaused").withArgs(admin.address);
      expect(await escrow.paused()).to.equal(false);
    });

    it("reverts with AccessControlUnauthorizedAccount without PAUSER_ROLE", async function () {
      const { escrow, stranger } = await loadFixture(deployEscrow);
      await expect(escrow.connect(stranger).pause())
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
      await escrow.pause();
      await expect(escrow.connect(stranger).unpause())
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
    });

    it("stops postTask and hireWithAgreement with EnforcedPause", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f))).to.be.revertedWithCustomError(
        f.escrow,
        "EnforcedPause",
      );
      const a = await agreement(f);
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a))).to.be.revertedWithCustomError(
        f.escrow,
        "EnforcedPause",
      );
    });

    it("stops acceptTask, proposeTerms, counterPropose and acceptCounter with EnforcedPause", async function () {
      const f = await loadFixture(pausedFixture);
      const e = f.escrow;
      await expect(e.connect(f.bob).acceptTask(f.direct, usd(100), 2n * DAY)).to.be.revertedWithCustomError(
        e,
        "EnforcedPause",
      );
      await expect(e.connect(f.alice).proposeTerms(f.direct, usd(95), 2n * DAY)).to.be.revertedWithCustomError(
        e,
        "EnforcedPause",
      );
      await expect(e.connect(f.bob).counterPropose(f.direct, usd(95), 2n * DAY)).to.be.revertedWithCustomError(
        e,
        "EnforcedPause",
      );
      await expect(e.connect(f.alice).acceptCounter(f.direct, usd(90), 2n * DAY)).to.be.revertedWithCustomError(
        e,
        "EnforcedPause",
      );
    });

    it("stops placeBid, selectBid and claimTask with EnforcedPause", async function () {
      const f = await loadFixture(pausedFixture);
      const e = f.escrow;
      await expect(
        e.connect(f.carol).placeBid(f.bidding, f.carolId, usd(120), DAY, PROPOSAL_HASH),
      ).to.be.revertedWithCustomError(e, "EnforcedPause");
      await expect(
        e.connect(f.alice).selectBid(f.bidding, f.bobId, usd(150), DAY, PROPOSAL_HASH),
      ).to.be.revertedWithCustomError(e, "EnforcedPause");
      await expect(e.connect(f.bob).claimTask(f.auto, f.bobId, f.serviceId)).to.be.revertedWithCustomError(
        e,
        "EnforcedPause",
      );
    });

    it("keeps declineTask working: full refund", async function () {
      const f = await loadFixture(pausedFixture);
      const tx = f.escrow.connect(f.bob).declineTask(f.direct);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(f.direct, 0n, usd(100), 0n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(100), -usd(100)]);
      expect((await f.escrow.getTask(f.direct)).status).to.equal(BigInt(Status.Closed));
    });

    it("keeps withdrawBid working", async function () {
      const f = await loadFixture(pausedFixture);
      await expect(f.escrow.connect(f.bob).withdrawBid(f.bidding, f.bobId))
        .to.emit(f.escrow, "BidWithdrawn")
        .withArgs(f.bidding, f.bobId);
      expect((await f.escrow.getBid(f.bidding, f.bobId)).price).to.equal(0n);
    });

    it("keeps closeTask working on an open task: full refund", async function () {
      const f = await loadFixture(pausedFixture);
      const tx = f.escrow.connect(f.alice).closeTask(f.toClose);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(f.toClose, Status.Open, Status.Closed)
        .and.to.emit(f.escrow, "TaskSettled")
        .withArgs(f.toClose, 0n, usd(100), 0n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(100), -usd(100)]);
    });

    it("lets business resume after unpause", async function () {
      const f = await loadFixture(pausedFixture);
      await f.escrow.unpause();
      await expect(f.escrow.connect(f.bob).claimTask(f.auto, f.bobId, f.serviceId)).to.emit(f.escrow, "TaskAssigned");
      await expect(f.escrow.connect(f.alice).postTask(await taskParams(f))).to.emit(f.escrow, "TaskPosted");
    });
  });

  // ------------------------------------------------------------------ postTask

  describe("postTask", function () {
    describe("happy paths", function () {
      it("posts a direct task: locks the budget, stores every field, emits TaskPosted", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f);
        const tx = f.escrow.connect(f.alice).postTask(params);
        await expect(tx)
          .to.emit(f.escrow, "TaskPosted")
          .withArgs(
            1n,
            f.aliceId,
            0n,
            f.bobId,
            Mode.Direct,
            params.token,
            usd(100),
            usd(100),
            CAPABILITY,
            SPEC_HASH,
            SPEC_URI,
          );
        await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [-usd(100), 0n, usd(100)]);
        expect(await f.escrow.taskCount()).to.equal(1n);
        expect(await taskOf(f.escrow, 1n)).to.deep.equal(
          expectedTask(String(params.token), BigInt(params.acceptDeadline)),
        );
      });

      it("returns the new task id and numbers tasks one by one", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f);
        expect(await f.escrow.connect(f.alice).postTask.staticCall(params)).to.equal(1n);
        await f.escrow.connect(f.alice).postTask(params);
        expect(await f.escrow.connect(f.alice).postTask.staticCall(params)).to.equal(2n);
        await f.escrow.connect(f.alice).postTask(params);
        expect(await f.escrow.taskCount()).to.equal(2n);
      });

      it("posts a bidding task: no provider, the maximum budget locked, the offer and minimum score stored, no capability", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f, {
          mode: Mode.Bidding,
          providerId: 0n,
          budget: usd(50),
          maxBudget: usd(200),
          minScoreBps: 4_000n,
        });
        const tx = f.escrow.connect(f.alice).postTask(params);
        await expect(tx)
          .to.emit(f.escrow, "TaskPosted")
          .withArgs(
            1n,
            f.aliceId,
            0n,
            0n,
            Mode.Bidding,
            params.token,
            usd(50),
            usd(200),
            CAPABILITY,
            SPEC_HASH,
            SPEC_URI,
          );
        await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [-usd(200), usd(200)]);
        expect(await taskOf(f.escrow, 1n)).to.deep.equal(
          expectedTask(String(params.token), BigInt(params.acceptDeadline), {
            amount: usd(200),
            providerId: 0n,
            mode: BigInt(Mode.Bidding),
            offer: usd(50),
            minScoreBps: 4_000n,
          }),
        );
      });

      it("posts an auto-match task and stores its capability", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f, { mode: Mode.AutoMatch, providerId: 0n });
        const tx = f.escrow.connect(f.alice).postTask(params);
        await expect(tx)
          .to.emit(f.escrow, "TaskPosted")
          .withArgs(
            1n,
            f.aliceId,
            0n,
            0n,
            Mode.AutoMatch,
            params.token,
            usd(100),
            usd(100),
            CAPABILITY,
            SPEC_HASH,
            SPEC_URI,
          );
        await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [-usd(100), usd(100)]);
        expect(await taskOf(f.escrow, 1n)).to.deep.equal(
          expectedTask(String(params.token), BigInt(params.acceptDeadline), {
            providerId: 0n,
            mode: BigInt(Mode.AutoMatch),
            capability: CAPABILITY,
          }),
        );
      });

      it("stores an offer below the maximum budget and locks the maximum", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f, { budget: usd(60) });
        await expect(f.escrow.connect(f.alice).postTask(params)).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.escrow],
          [-usd(100), usd(100)],
        );
        expect(await taskOf(f.escrow, 1n)).to.deep.equal(
          expectedTask(String(params.token), BigInt(params.acceptDeadline), { offer: usd(60) }),
        );
      });

      it("stores a parent task whose provider is the client, with offer 0 when budget equals the maximum", async function () {
        const f = await loadFixture(deployEscrow);
        // Carol hires alice (task #1); alice posts a sub-task of it to bob.
        const parent = await postAsCarolToAlice(f);
        const params = await taskParams(f, { parentTaskId: parent, minScoreBps: 5_000n });
        await expect(f.escrow.connect(f.alice).postTask(params))
          .to.emit(f.escrow, "TaskPosted")
          .withArgs(
            2n,
            f.aliceId,
            parent,
            f.bobId,
            Mode.Direct,
            params.token,
            usd(100),
            usd(100),
            CAPABILITY,
            SPEC_HASH,
            SPEC_URI,
          );
        expect(await taskOf(f.escrow, 2n)).to.deep.equal(
          expectedTask(String(params.token), BigInt(params.acceptDeadline), {
            parentTaskId: parent,
            minScoreBps: 5_000n,
          }),
        );
      });

      it("accepts the boundaries: budget at the token minimum, periods at MIN_PERIOD and MAX_PERIOD, a 512-byte URI", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f, {
          budget: MIN_BUDGET,
          maxBudget: MIN_BUDGET,
          deliveryDuration: MIN_PERIOD,
          reviewPeriod: MAX_PERIOD,
          specURI: "u".repeat(Number(MAX_URI_BYTES)),
          minScoreBps: NEUTRAL_SCORE,
        });
        await expect(f.escrow.connect(f.alice).postTask(params)).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.escrow],
          [-MIN_BUDGET, MIN_BUDGET],
        );
        const t = await f.escrow.getTask(1n);
        expect(t.deliveryDuration).to.equal(MIN_PERIOD);
        expect(t.reviewPeriod).to.equal(MAX_PERIOD);
        expect(t.amount).to.equal(MIN_BUDGET);
      });

      it("accepts an acceptance deadline equal to the block time or at the MAX_PERIOD horizon", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f);
        let t = await pinNext();
        await f.escrow.connect(f.alice).postTask({ ...params, acceptDeadline: t });
        expect((await f.escrow.getTask(1n)).deadline).to.equal(t);
        t = await pinNext();
        await f.escrow.connect(f.alice).postTask({ ...params, acceptDeadline: t + MAX_PERIOD });
        expect((await f.escrow.getTask(2n)).deadline).to.equal(t + MAX_PERIOD);
      });

      it("accepts a minimum score of 10,000 on an open-market task", async function () {
        const f = await loadFixture(deployEscrow);
        await postBidding(f, { minScoreBps: 10_000n });
        expect((await f.escrow.getTask(1n)).minScoreBps).to.equal(10_000n);
      });

      it("lets a direct task name another agent of the client's owner", async function () {
        const f = await loadFixture(actorsFixture);
        const id = await post(f, { providerId: f.alice2Id });
        expect((await f.escrow.getTask(id)).providerId).to.equal(f.alice2Id);
      });
    });

    describe("who may post", function () {
      it("lets the client's agent wallet post and pay", async function () {
        const f = await loadFixture(actorsFixture);
        const params = await taskParams(f);
        await expect(f.escrow.connect(f.aliceWallet).postTask(params)).to.changeTokenBalances(
          f.usdt,
          [f.aliceWallet, f.alice, f.escrow],
          [-usd(100), 0n, usd(100)],
        );
        expect((await f.escrow.getTask(1n)).clientId).to.equal(f.aliceId);
      });

      it("lets an operator within its policy post; it pays and its policy is debited with the provider as counterparty", async function () {
        const f = await loadFixture(actorsFixture);
        expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(100));
        const tx = f.escrow.connect(f.operator).postTask(await taskParams(f));
        await expect(tx)
          .to.emit(f.registry, "SpendConsumed")
          .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(100), f.bobId);
        await expect(tx).to.changeTokenBalances(
          f.usdt,
          [f.operator, f.alice, f.aliceWallet, f.escrow],
          [-usd(100), 0n, 0n, usd(100)],
        );
        expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(50));
      });

      it("debits an operator's policy by the maximum budget with counterparty 0 for a bidding task", async function () {
        const f = await loadFixture(actorsFixture);
        const params = await taskParams(f, { mode: Mode.Bidding, providerId: 0n, budget: usd(40), maxBudget: usd(70) });
        await expect(f.escrow.connect(f.operator).postTask(params))
          .to.emit(f.registry, "SpendConsumed")
          .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(70), 0n);
        expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(80));
      });

      it("reverts with the registry's AgentRegistryPerTxCapExceeded for an operator over its per-transaction cap", async function () {
        const f = await loadFixture(actorsFixture);
        await expect(f.escrow.connect(f.operator).postTask(await taskParams(f, { maxBudget: usd(101) })))
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
          .withArgs(f.usdtAddr, usd(101), usd(100));
      });

      it("reverts with the registry's AgentRegistryPeriodCapExceeded for an operator over its period cap", async function () {
        const f = await loadFixture(actorsFixture);
        await f.escrow.connect(f.operator).postTask(await taskParams(f));
        await expect(
          f.escrow.connect(f.operator).postTask(await taskParams(f, { budget: usd(60), maxBudget: usd(60) })),
        )
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(f.usdtAddr, usd(60), usd(50));
      });

      it("reverts with AgentRegistryCounterpartyNotAllowed(0) for an allow-list operator posting on the open market", async function () {
        const f = await loadFixture(actorsFixture);
        await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, {
          expiry: f.operatorExpiry,
          minScoreBps: 0,
          allowListOnly: true,
        });
        await f.registry.connect(f.alice).setCounterparties(f.aliceId, f.operator.address, [f.bobId], true);
        await expect(
          f.escrow.connect(f.operator).postTask(await taskParams(f, { maxBudget: usd(50), budget: usd(50) })),
        )
          .to.emit(f.registry, "SpendConsumed")
          .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(50), f.bobId);
        await expect(
          f.escrow
            .connect(f.operator)
            .postTask(await taskParams(f, { mode: Mode.Bidding, providerId: 0n, budget: usd(50), maxBudget: usd(50) })),
        )
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryCounterpartyNotAllowed")
          .withArgs(0n);
      });

      it("reverts with the registry's AgentRegistryNotAuthorized for a stranger", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.stranger).postTask(await taskParams(f)))
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
          .withArgs(f.aliceId, f.stranger.address);
      });

      it("reverts with the registry's AgentRegistryUnknownAgent for an unknown client", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { clientId: UNKNOWN })))
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryUnknownAgent")
          .withArgs(UNKNOWN);
      });
    });

    describe("validation", function () {
      it("reverts with TaskEscrowBadTask when mode and provider do not fit", async function () {
        const f = await loadFixture(deployEscrow);
        const e = f.escrow.connect(f.alice);
        for (const over of [
          { mode: Mode.Direct, providerId: 0n },
          { mode: Mode.Bidding, providerId: f.bobId },
          { mode: Mode.AutoMatch, providerId: f.bobId },
        ]) {
          await expect(e.postTask(await taskParams(f, over))).to.be.revertedWithCustomError(
            f.escrow,
            "TaskEscrowBadTask",
          );
        }
      });

      it("reverts with TaskEscrowBadTask for an auto-match task without capability", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(
          f.escrow
            .connect(f.alice)
            .postTask(await taskParams(f, { mode: Mode.AutoMatch, providerId: 0n, capability: ethers.ZeroHash })),
        ).to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTask");
      });

      it("reverts with TaskEscrowBadTask for a minimum score above 10,000", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(
          f.escrow
            .connect(f.alice)
            .postTask(await taskParams(f, { mode: Mode.Bidding, providerId: 0n, minScoreBps: 10_001n })),
        ).to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTask");
      });

      it("reverts with TaskEscrowBadTask for an unknown parent or a parent whose provider is not the client", async function () {
        const f = await loadFixture(deployEscrow);
        const notMine = await post(f); // alice → bob: its provider is bob, not alice
        const open = await postBidding(f); // no provider yet
        for (const parentTaskId of [UNKNOWN, notMine, open]) {
          await expect(
            f.escrow.connect(f.alice).postTask(await taskParams(f, { parentTaskId })),
          ).to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTask");
        }
      });

      it("reverts with TaskEscrowTokenNotAllowed for a token not allow-listed", async function () {
        const f = await loadFixture(deployEscrow);
        const okbAddr = await f.okb.getAddress();
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { token: okbAddr })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTokenNotAllowed")
          .withArgs(okbAddr);
      });

      it("reverts with TaskEscrowBadAmount for a budget of zero or below the token minimum", async function () {
        const f = await loadFixture(deployEscrow);
        for (const budget of [0n, MIN_BUDGET - 1n]) {
          await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { budget })))
            .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
            .withArgs(budget);
        }
      });

      it("reverts with TaskEscrowBadAmount for a budget above the maximum budget", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { budget: usd(101), maxBudget: usd(100) })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
          .withArgs(usd(101));
      });

      it("reverts with TaskEscrowBadAmount for a maximum budget above uint96", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(
          f.escrow
            .connect(f.alice)
            .postTask(await taskParams(f, { mode: Mode.Bidding, providerId: 0n, maxBudget: UINT96_MAX + 1n })),
        )
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
          .withArgs(UINT96_MAX + 1n);
      });

      it("reverts with TaskEscrowBadTime for an acceptance deadline in the past", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f);
        const t = await pinNext();
        await expect(f.escrow.connect(f.alice).postTask({ ...params, acceptDeadline: t - 1n }))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
          .withArgs(t - 1n);
      });

      it("reverts with TaskEscrowBadTime for an acceptance deadline beyond now + MAX_PERIOD", async function () {
        const f = await loadFixture(deployEscrow);
        const params = await taskParams(f);
        const t = await pinNext();
        await expect(f.escrow.connect(f.alice).postTask({ ...params, acceptDeadline: t + MAX_PERIOD + 1n }))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
          .withArgs(t + MAX_PERIOD + 1n);
      });

      it("reverts with TaskEscrowBadTime for a delivery duration or review period outside [MIN_PERIOD, MAX_PERIOD]", async function () {
        const f = await loadFixture(deployEscrow);
        for (const bad of [0n, MIN_PERIOD - 1n, MAX_PERIOD + 1n]) {
          await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { deliveryDuration: bad })))
            .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
            .withArgs(bad);
          await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { reviewPeriod: bad })))
            .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
            .withArgs(bad);
        }
      });

      it("reverts with TaskEscrowInputTooLong for a spec URI over 512 bytes, counting bytes", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { specURI: "u".repeat(513) })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowInputTooLong")
          .withArgs(513n, MAX_URI_BYTES);
        // 257 two-byte characters: 514 bytes.
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { specURI: "é".repeat(257) })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowInputTooLong")
          .withArgs(514n, MAX_URI_BYTES);
      });

      it("reverts with TaskEscrowProviderInactive for a paused or unknown direct provider", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { providerId: UNKNOWN })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
          .withArgs(UNKNOWN);
        await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f)))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
          .withArgs(f.bobId);
      });

      it("reverts with TaskEscrowSelfDealing when the direct provider is the client", async function () {
        const f = await loadFixture(deployEscrow);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { providerId: f.aliceId })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowSelfDealing")
          .withArgs(f.aliceId, f.aliceId);
      });

      it("reverts with TaskEscrowScoreTooLow when the direct provider's score is below the minimum", async function () {
        const f = await loadFixture(deployEscrow);
        expect(await f.reputation.score(f.bobId)).to.equal(NEUTRAL_SCORE);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { minScoreBps: 6_000n })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowScoreTooLow")
          .withArgs(f.bobId, NEUTRAL_SCORE, 6_000n);
      });

      it("reverts with TaskEscrowTransferMismatch for a fee-on-transfer token", async function () {
        const f = await loadFixture(deployEscrow);
        const fot = await new MockFeeOnTransferToken__factory(f.admin).deploy(100); // 1%
        const fotAddr = await fot.getAddress();
        await f.escrow.setToken(fotAddr, usd(1));
        await fot.mint(f.alice.address, usd(1_000));
        await fot.connect(f.alice).approve(await f.escrow.getAddress(), ethers.MaxUint256);
        await expect(f.escrow.connect(f.alice).postTask(await taskParams(f, { token: fotAddr })))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTransferMismatch")
          .withArgs(fotAddr, usd(100), usd(99));
      });
    });
  });

  // ------------------------------------------------------------------ hireWithAgreement

  describe("hireWithAgreement", function () {
    it("creates, funds and assigns the task in one transaction", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f, { price: usd(70), deliveryDuration: 3n * DAY, reviewPeriod: 2n * DAY });
      const signature = await signAgreement(f.escrow, f.bob, a);
      const t = await pinNext();
      const tx = hire(f, a, f.bob.address, signature);
      await expect(tx)
        .to.emit(f.escrow, "TaskPosted")
        .withArgs(1n, f.aliceId, 0n, f.bobId, Mode.Direct, a.token, usd(70), usd(70), CAPABILITY, SPEC_HASH, SPEC_URI)
        .and.to.emit(f.escrow, "TaskStateChanged")
        .withArgs(1n, Status.Open, Status.Accepted)
        .and.to.emit(f.escrow, "TaskAssigned")
        .withArgs(1n, f.bobId, usd(70), t + 3n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [-usd(70), 0n, usd(70)]);
      expect(await f.escrow.taskCount()).to.equal(1n);
      expect(await f.escrow.nonceUsed(f.bobId, a.nonce)).to.equal(true);
      expect(await taskOf(f.escrow, 1n)).to.deep.equal(
        expectedTask(a.token, t + 3n * DAY, {
          amount: usd(70),
          status: BigInt(Status.Accepted),
          deliveryDuration: 3n * DAY,
          reviewPeriod: 2n * DAY,
        }),
      );
    });

    it("stores the parent task of the agreement", async function () {
      const f = await loadFixture(deployEscrow);
      const parent = await postAsCarolToAlice(f);
      const a = await agreement(f, { parentTaskId: parent });
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a)))
        .to.emit(f.escrow, "TaskPosted")
        .withArgs(
          2n,
          f.aliceId,
          parent,
          f.bobId,
          Mode.Direct,
          a.token,
          usd(100),
          usd(100),
          CAPABILITY,
          SPEC_HASH,
          SPEC_URI,
        );
      expect((await f.escrow.getTask(2n)).parentTaskId).to.equal(parent);
    });

    it("accepts an agreement in its expiry second, and reverts with TaskEscrowAgreementExpired one second later", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      const b = { ...a, nonce: 2n };
      const signatureB = await signAgreement(f.escrow, f.bob, b);
      await time.setNextBlockTimestamp(a.expiry);
      await expect(hire(f, a, f.bob.address, signature)).to.emit(f.escrow, "TaskAssigned");
      await expect(hire(f, b, f.bob.address, signatureB))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowAgreementExpired")
        .withArgs(b.expiry);
    });

    it("reverts with TaskEscrowNonceUsed when the agreement is replayed", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f, { nonce: 42n });
      const signature = await signAgreement(f.escrow, f.bob, a);
      await hire(f, a, f.bob.address, signature);
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 42n);
    });

    it("reverts with TaskEscrowBadSignature when the signer may not act for the provider", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      // A stranger and the client itself sign their own valid signatures.
      for (const who of [f.stranger, f.alice, f.carol]) {
        await expect(hire(f, a, who.address, await signAgreement(f.escrow, who, a)))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
          .withArgs(who.address);
      }
    });

    it("reverts with TaskEscrowBadSignature when the signature is not the named signer's", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.carol, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
    });

    it("reverts with TaskEscrowBadSignature when the terms were changed after signing", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      for (const over of [{ price: usd(50) }, { deliveryDuration: 3n * DAY }, { specHash: ethers.id("other") }]) {
        await expect(hire(f, { ...a, ...over }, f.bob.address, signature))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
          .withArgs(f.bob.address);
      }
    });

    it("reverts with TaskEscrowBadSignature for a signature on another chain id or another verifying contract", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const otherChain = await signAgreement(f.escrow, f.bob, a, { chainId: 1n });
      const otherContract = await signAgreement(f.escrow, f.bob, a, {
        verifyingContract: await f.registry.getAddress(),
      });
      for (const signature of [otherChain, otherContract]) {
        await expect(hire(f, a, f.bob.address, signature))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
          .withArgs(f.bob.address);
      }
      expect(await f.escrow.nonceUsed(f.bobId, a.nonce)).to.equal(false);
    });

    it("reverts with TaskEscrowBadSignature for the malleable twin of a valid signature, which stays usable", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      await expect(hire(f, a, f.bob.address, malleate(signature)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(f.bob.address);
      expect(await f.escrow.nonceUsed(f.bobId, a.nonce)).to.equal(false);
      await expect(hire(f, a, f.bob.address, signature)).to.emit(f.escrow, "TaskAssigned");
    });

    it("accepts a signature by the provider's agent wallet or operator", async function () {
      const f = await loadFixture(actorsFixture);
      const a = await agreement(f, { nonce: 1n });
      const b = { ...a, nonce: 2n };
      const byWallet = await signAgreement(f.escrow, f.bobWallet, a);
      const byOperator = await signAgreement(f.escrow, f.bobOperator, b);
      let t = await pinNext();
      await expect(hire(f, a, f.bobWallet.address, byWallet))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(1n, f.bobId, usd(100), t + 2n * DAY);
      t = await pinNext();
      await expect(hire(f, b, f.bobOperator.address, byOperator))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(2n, f.bobId, usd(100), t + 2n * DAY);
    });

    it("accepts an ERC-1271 provider owner's signature and rejects it when the wallet refuses", async function () {
      const f = await loadFixture(deployEscrow);
      const wallet = await new MockERC1271Wallet__factory(f.dave).deploy(f.dave.address);
      const walletAddr = await wallet.getAddress();
      const register = f.registry.interface.encodeFunctionData("register(string)", ["ipfs://contract-agent"]);
      await wallet.connect(f.dave).execute(await f.registry.getAddress(), 0, register);
      const providerId = await f.registry.agentCount();
      expect(await f.registry.ownerOfAgent(providerId)).to.equal(walletAddr);
      const a = await agreement(f, { providerId });
      const b = { ...a, nonce: 2n };
      // The wallet accepts its owner's (dave's) signature of the EIP-712 digest.
      const signatureA = await signAgreement(f.escrow, f.dave, a);
      const t = await pinNext();
      await expect(hire(f, a, walletAddr, signatureA))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(1n, providerId, usd(100), t + 2n * DAY);
      const signatureB = await signAgreement(f.escrow, f.dave, b);
      await wallet.connect(f.dave).setRejectAll(true);
      await expect(hire(f, b, walletAddr, signatureB))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadSignature")
        .withArgs(walletAddr);
    });

    it("validates like postTask: provider paused, self-dealing, price below the minimum, bad periods", async function () {
      const f = await loadFixture(deployEscrow);
      let a = await agreement(f, { price: MIN_BUDGET - 1n });
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
        .withArgs(MIN_BUDGET - 1n);
      a = await agreement(f, { reviewPeriod: MIN_PERIOD - 1n });
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
        .withArgs(MIN_PERIOD - 1n);
      a = await agreement(f, { providerId: f.aliceId });
      await expect(hire(f, a, f.alice.address, await signAgreement(f.escrow, f.alice, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowSelfDealing")
        .withArgs(f.aliceId, f.aliceId);
      a = await agreement(f);
      const signature = await signAgreement(f.escrow, f.bob, a);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(hire(f, a, f.bob.address, signature))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with the registry's AgentRegistryNotAuthorized when the caller may not pay for the client", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f);
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a), f.stranger))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
        .withArgs(f.aliceId, f.stranger.address);
    });

    it("agreementDigest equals ethers' TypedDataEncoder.hash and domainSeparator its domain hash", async function () {
      const f = await loadFixture(deployEscrow);
      const a = await agreement(f, { nonce: 123n, parentTaskId: 7n });
      const domain = await escrowDomain(f.escrow);
      expect(await f.escrow.agreementDigest(a)).to.equal(ethers.TypedDataEncoder.hash(domain, AGREEMENT_TYPES, a));
      expect(await f.escrow.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
    });
  });

  // ------------------------------------------------------------------ cancelAgreementNonce

  describe("cancelAgreementNonce", function () {
    it("burns a provider's nonce, emits AgreementNonceCancelled and blocks the agreement using it", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 7n))
        .to.emit(f.escrow, "AgreementNonceCancelled")
        .withArgs(f.bobId, 7n);
      expect(await f.escrow.nonceUsed(f.bobId, 7n)).to.equal(true);
      expect(await f.escrow.nonceUsed(f.bobId, 8n)).to.equal(false);
      expect(await f.escrow.nonceUsed(f.carolId, 7n)).to.equal(false);
      const a = await agreement(f, { nonce: 7n });
      await expect(hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a)))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 7n);
    });

    it("handles nonces in any bitmap word, up to the largest uint256", async function () {
      const f = await loadFixture(deployEscrow);
      const big = ethers.MaxUint256;
      await f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, big);
      await f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 256n);
      expect(await f.escrow.nonceUsed(f.bobId, big)).to.equal(true);
      expect(await f.escrow.nonceUsed(f.bobId, big - 1n)).to.equal(false);
      expect(await f.escrow.nonceUsed(f.bobId, 256n)).to.equal(true);
      expect(await f.escrow.nonceUsed(f.bobId, 0n)).to.equal(false);
    });

    it("reverts with TaskEscrowNonceUsed for a nonce already cancelled or used", async function () {
      const f = await loadFixture(deployEscrow);
      await f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 7n);
      await expect(f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 7n))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 7n);
      const a = await agreement(f, { nonce: 3n });
      await hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a));
      await expect(f.escrow.connect(f.bob).cancelAgreementNonce(f.bobId, 3n))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNonceUsed")
        .withArgs(f.bobId, 3n);
    });

    it("lets the provider's agent wallet and operator cancel", async function () {
      const f = await loadFixture(actorsFixture);
      await expect(f.escrow.connect(f.bobWallet).cancelAgreementNonce(f.bobId, 1n))
        .to.emit(f.escrow, "AgreementNonceCancelled")
        .withArgs(f.bobId, 1n);
      await expect(f.escrow.connect(f.bobOperator).cancelAgreementNonce(f.bobId, 2n))
        .to.emit(f.escrow, "AgreementNonceCancelled")
        .withArgs(f.bobId, 2n);
    });

    it("reverts with TaskEscrowNotAuthorized for the client side or a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      for (const who of [f.alice, f.stranger]) {
        await expect(f.escrow.connect(who).cancelAgreementNonce(f.bobId, 1n))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
      expect(await f.escrow.nonceUsed(f.bobId, 1n)).to.equal(false);
    });
  });

  // ------------------------------------------------------------------ acceptTask

  describe("acceptTask", function () {
    it("assigns the named provider at the offer: TaskStateChanged and TaskAssigned, no money moves", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      const t = await pinNext();
      const tx = f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Accepted)
        .and.to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, usd(100), t + 2n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      expect(await taskOf(f.escrow, id)).to.deep.equal(
        expectedTask(await f.usdt.getAddress(), t + 2n * DAY, { status: BigInt(Status.Accepted) }),
      );
    });

    it("refunds the unused budget to the client when the offer is below the maximum budget", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { budget: usd(60) });
      const tx = f.escrow.connect(f.bob).acceptTask(id, usd(60), 2n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [usd(40), 0n, -usd(40)]);
      const t = await f.escrow.getTask(id);
      expect(t.amount).to.equal(usd(60));
      expect(t.offer).to.equal(0n);
    });

    it("sends the refund to the client agent's wallet", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await post(f, { budget: usd(60) });
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(60), 2n * DAY)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.aliceWallet, f.escrow],
        [0n, usd(40), -usd(40)],
      );
    });

    it("lets the provider's agent wallet or operator accept", async function () {
      const f = await loadFixture(actorsFixture);
      const first = await post(f);
      const second = await post(f);
      const t = await pinNext();
      await expect(f.escrow.connect(f.bobWallet).acceptTask(first, usd(100), 2n * DAY))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(first, f.bobId, usd(100), t + 2n * DAY);
      await expect(f.escrow.connect(f.bobOperator).acceptTask(second, usd(100), 2n * DAY)).to.emit(
        f.escrow,
        "TaskAssigned",
      );
      expect((await f.escrow.getTask(second)).status).to.equal(BigInt(Status.Accepted));
    });

    it("reverts with TaskEscrowNotAuthorized for the client or another agent's owner", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const who of [f.alice, f.carol, f.stranger]) {
        await expect(f.escrow.connect(who).acceptTask(id, usd(100), 2n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
    });

    it("reverts with TaskEscrowTermsChanged when price or duration differ from the current offer", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { budget: usd(60) });
      for (const [price, duration] of [
        [usd(100), 2n * DAY], // the locked amount, not the offer
        [usd(59), 2n * DAY],
        [usd(60), 2n * DAY + 1n],
      ]) {
        await expect(f.escrow.connect(f.bob).acceptTask(id, price, duration))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
          .withArgs(id);
      }
    });

    it("accepts in the acceptance deadline's second; reverts with TaskEscrowDeadlinePassed after it", async function () {
      const f = await loadFixture(deployEscrow);
      const first = await post(f);
      const second = await post(f);
      const d1 = (await f.escrow.getTask(first)).deadline;
      const d2 = (await f.escrow.getTask(second)).deadline;
      await time.setNextBlockTimestamp(d1);
      await expect(f.escrow.connect(f.bob).acceptTask(first, usd(100), 2n * DAY)).to.emit(f.escrow, "TaskAssigned");
      await passDeadline(d2);
      await expect(f.escrow.connect(f.bob).acceptTask(second, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(second, d2);
    });

    it("reverts with TaskEscrowBadTask on a bidding or auto-match task", async function () {
      const f = await loadFixture(deployEscrow);
      for (const id of [await postBidding(f), await postAuto(f)]) {
        await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY)).to.be.revertedWithCustomError(
          f.escrow,
          "TaskEscrowBadTask",
        );
      }
    });

    it("reverts with TaskEscrowUnknownTask or TaskEscrowWrongStatus", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).acceptTask(UNKNOWN, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN);
      const id = await post(f);
      await f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });

    it("reverts with TaskEscrowProviderInactive when the provider paused its agent after posting", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with TaskEscrowScoreTooLow when the provider's score fell below the task's minimum", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { minScoreBps: NEUTRAL_SCORE });
      await f.reputation.grantRole(REPORTER_ROLE, f.reporter.address);
      await f.reputation
        .connect(f.reporter)
        .recordTask(f.carolId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), usd(10));
      expect(await f.reputation.score(f.bobId)).to.equal(2_500n);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowScoreTooLow")
        .withArgs(f.bobId, 2_500n, NEUTRAL_SCORE);
    });
  });

  // ------------------------------------------------------------------ declineTask

  describe("declineTask", function () {
    it("closes the task with a full refund and emits TaskStateChanged and TaskSettled(id, 0, amount, 0)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      const deadline = (await f.escrow.getTask(id)).deadline;
      const tx = f.escrow.connect(f.bob).declineTask(id);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Closed)
        .and.to.emit(f.escrow, "TaskSettled")
        .withArgs(id, 0n, usd(100), 0n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [usd(100), 0n, -usd(100)]);
      expect(await taskOf(f.escrow, id)).to.deep.equal(
        expectedTask(await f.usdt.getAddress(), deadline, { status: BigInt(Status.Closed) }),
      );
    });

    it("refunds the whole locked maximum budget when the offer was lower", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { budget: usd(60) });
      const tx = f.escrow.connect(f.bob).declineTask(id);
      await expect(tx).to.emit(f.escrow, "TaskSettled").withArgs(id, 0n, usd(100), 0n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(100), -usd(100)]);
      expect((await f.escrow.getTask(id)).amount).to.equal(usd(100));
    });

    it("refunds to the client agent's wallet; the provider's wallet and operator may decline", async function () {
      const f = await loadFixture(actorsFixture);
      const first = await post(f);
      const second = await post(f);
      await expect(f.escrow.connect(f.bobWallet).declineTask(first)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.aliceWallet, f.bobWallet, f.escrow],
        [0n, usd(100), 0n, -usd(100)],
      );
      await expect(f.escrow.connect(f.bobOperator).declineTask(second))
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(second, 0n, usd(100), 0n);
    });

    it("reverts with TaskEscrowNotAuthorized for the client or a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const who of [f.alice, f.stranger]) {
        await expect(f.escrow.connect(who).declineTask(id))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
    });

    it("reverts with TaskEscrowBadTask on a bidding or auto-match task", async function () {
      const f = await loadFixture(deployEscrow);
      for (const id of [await postBidding(f), await postAuto(f)]) {
        await expect(f.escrow.connect(f.bob).declineTask(id)).to.be.revertedWithCustomError(
          f.escrow,
          "TaskEscrowBadTask",
        );
      }
    });

    it("reverts with TaskEscrowUnknownTask or TaskEscrowWrongStatus", async function () {
      const f = await loadFixture(deployEscrow);
      await expect(f.escrow.connect(f.bob).declineTask(UNKNOWN))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowUnknownTask")
        .withArgs(UNKNOWN);
      const id = await post(f);
      await f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY);
      await expect(f.escrow.connect(f.bob).declineTask(id))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
      const declined = await post(f);
      await f.escrow.connect(f.bob).declineTask(declined);
      await expect(f.escrow.connect(f.bob).declineTask(declined))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(declined, Status.Closed);
    });
  });

  // ------------------------------------------------------------------ negotiation

  describe("proposeTerms", function () {
    it("changes the offer and duration, counts a proposal and emits TermsProposed(byProvider false)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await expect(f.escrow.connect(f.alice).proposeTerms(id, usd(80), 3n * DAY))
        .to.emit(f.escrow, "TermsProposed")
        .withArgs(id, false, usd(80), 3n * DAY);
      const t = await f.escrow.getTask(id);
      expect([t.amount, t.offer, t.deliveryDuration, t.proposals]).to.deep.equal([usd(100), usd(80), 3n * DAY, 1n]);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
        .withArgs(id);
      const t0 = await pinNext();
      const tx = f.escrow.connect(f.bob).acceptTask(id, usd(80), 3n * DAY);
      await expect(tx)
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, usd(80), t0 + 3n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.escrow], [usd(20), -usd(20)]);
    });

    it("stores offer 0 when the price equals the locked amount", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { budget: usd(60) });
      await f.escrow.connect(f.alice).proposeTerms(id, usd(100), 2n * DAY);
      expect((await f.escrow.getTask(id)).offer).to.equal(0n);
      await expect(f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.escrow],
        [0n, 0n],
      );
    });

    it("reverts with TaskEscrowBadAmount for a price of zero or above the locked amount", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const price of [0n, usd(100) + 1n]) {
        await expect(f.escrow.connect(f.alice).proposeTerms(id, price, 2n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
          .withArgs(price);
      }
    });

    it("reverts with TaskEscrowBadTime for a duration outside [MIN_PERIOD, MAX_PERIOD]", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const duration of [MIN_PERIOD - 1n, MAX_PERIOD + 1n]) {
        await expect(f.escrow.connect(f.alice).proposeTerms(id, usd(90), duration))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
          .withArgs(duration);
      }
    });

    it("reverts with TaskEscrowNotAuthorized for the provider or a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const who of [f.bob, f.stranger]) {
        await expect(f.escrow.connect(who).proposeTerms(id, usd(90), 2n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.aliceId, who.address);
      }
    });

    it("lets the client's agent wallet and operator propose", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await post(f);
      await expect(f.escrow.connect(f.aliceWallet).proposeTerms(id, usd(90), 2n * DAY))
        .to.emit(f.escrow, "TermsProposed")
        .withArgs(id, false, usd(90), 2n * DAY);
      await expect(f.escrow.connect(f.operator).proposeTerms(id, usd(95), 2n * DAY))
        .to.emit(f.escrow, "TermsProposed")
        .withArgs(id, false, usd(95), 2n * DAY);
      expect((await f.escrow.getTask(id)).proposals).to.equal(2n);
    });

    it("reverts with TaskEscrowBadTask, TaskEscrowDeadlinePassed or TaskEscrowWrongStatus when the task is not an open direct task", async function () {
      const f = await loadFixture(deployEscrow);
      const bidding = await postBidding(f);
      await expect(f.escrow.connect(f.alice).proposeTerms(bidding, usd(90), 2n * DAY)).to.be.revertedWithCustomError(
        f.escrow,
        "TaskEscrowBadTask",
      );
      const accepted = await post(f);
      await f.escrow.connect(f.bob).acceptTask(accepted, usd(100), 2n * DAY);
      await expect(f.escrow.connect(f.alice).proposeTerms(accepted, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(accepted, Status.Accepted);
      const late = await post(f);
      const deadline = (await f.escrow.getTask(late)).deadline;
      await passDeadline(deadline);
      await expect(f.escrow.connect(f.alice).proposeTerms(late, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(late, deadline);
    });
  });

  describe("counterPropose", function () {
    it("stores the counter, counts a proposal, leaves the offer alone and emits TermsProposed(byProvider true)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f, { budget: usd(60) });
      await expect(f.escrow.connect(f.bob).counterPropose(id, usd(100), 3n * DAY))
        .to.emit(f.escrow, "TermsProposed")
        .withArgs(id, true, usd(100), 3n * DAY);
      const c = await f.escrow.getCounter(id);
      expect([c.price, c.deliveryDuration]).to.deep.equal([usd(100), 3n * DAY]);
      const t = await f.escrow.getTask(id);
      expect([t.offer, t.deliveryDuration, t.proposals]).to.deep.equal([usd(60), 2n * DAY, 1n]);
    });

    it("replaces a pending counter with a new one", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      await f.escrow.connect(f.bob).counterPropose(id, usd(95), 4n * DAY);
      const c = await f.escrow.getCounter(id);
      expect([c.price, c.deliveryDuration]).to.deep.equal([usd(95), 4n * DAY]);
      expect((await f.escrow.getTask(id)).proposals).to.equal(2n);
    });

    it("reverts with TaskEscrowBadAmount for a price of zero or above the locked amount", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const price of [0n, usd(100) + 1n]) {
        await expect(f.escrow.connect(f.bob).counterPropose(id, price, 2n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
          .withArgs(price);
      }
    });

    it("reverts with TaskEscrowBadTime for a duration outside [MIN_PERIOD, MAX_PERIOD]", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const duration of [MIN_PERIOD - 1n, MAX_PERIOD + 1n]) {
        await expect(f.escrow.connect(f.bob).counterPropose(id, usd(90), duration))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
          .withArgs(duration);
      }
    });

    it("reverts with TaskEscrowNotAuthorized for the client or another provider", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (const who of [f.alice, f.carol]) {
        await expect(f.escrow.connect(who).counterPropose(id, usd(90), 2n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
    });

    it("reverts with TaskEscrowBadTask on a non-direct task and TaskEscrowDeadlinePassed after the deadline", async function () {
      const f = await loadFixture(deployEscrow);
      const auto = await postAuto(f);
      await expect(f.escrow.connect(f.bob).counterPropose(auto, usd(90), 2n * DAY)).to.be.revertedWithCustomError(
        f.escrow,
        "TaskEscrowBadTask",
      );
      const id = await post(f);
      const deadline = (await f.escrow.getTask(id)).deadline;
      await passDeadline(deadline);
      await expect(f.escrow.connect(f.bob).counterPropose(id, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });
  });

  describe("MAX_PROPOSALS", function () {
    it("allows 8 proposals from both sides together, then reverts with TaskEscrowTooManyProposals; acceptance still works", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      for (let i = 0n; i < MAX_PROPOSALS / 2n; i++) {
        await f.escrow.connect(f.alice).proposeTerms(id, usd(80) + i, 2n * DAY);
        await f.escrow.connect(f.bob).counterPropose(id, usd(95) - i, 2n * DAY);
      }
      expect((await f.escrow.getTask(id)).proposals).to.equal(MAX_PROPOSALS);
      await expect(f.escrow.connect(f.alice).proposeTerms(id, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTooManyProposals")
        .withArgs(id);
      await expect(f.escrow.connect(f.bob).counterPropose(id, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTooManyProposals")
        .withArgs(id);
      const lastCounter = usd(95) - (MAX_PROPOSALS / 2n - 1n);
      expect((await f.escrow.getCounter(id)).price).to.equal(lastCounter);
      const t = await pinNext();
      await expect(f.escrow.connect(f.alice).acceptCounter(id, lastCounter, 2n * DAY))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, lastCounter, t + 2n * DAY);
    });
  });

  describe("acceptCounter", function () {
    it("assigns at the counter's terms, refunds the rest to the client and clears the counter", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      const t = await pinNext();
      const tx = f.escrow.connect(f.alice).acceptCounter(id, usd(90), 3n * DAY);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Accepted)
        .and.to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, usd(90), t + 3n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [usd(10), 0n, -usd(10)]);
      const c = await f.escrow.getCounter(id);
      expect([c.price, c.deliveryDuration]).to.deep.equal([0n, 0n]);
      expect(await taskOf(f.escrow, id)).to.deep.equal(
        expectedTask(await f.usdt.getAddress(), t + 3n * DAY, {
          status: BigInt(Status.Accepted),
          amount: usd(90),
          deliveryDuration: 3n * DAY,
          proposals: 1n,
        }),
      );
    });

    it("clears a lower client offer and refunds to the client agent's wallet", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await post(f, { budget: usd(50) });
      await f.escrow.connect(f.bob).counterPropose(id, usd(70), 2n * DAY);
      await expect(f.escrow.connect(f.operator).acceptCounter(id, usd(70), 2n * DAY)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.aliceWallet, f.operator, f.escrow],
        [0n, usd(30), 0n, -usd(30)],
      );
      const t = await f.escrow.getTask(id);
      expect([t.amount, t.offer]).to.deep.equal([usd(70), 0n]);
    });

    it("reverts with TaskEscrowNoBid without a pending counter", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await expect(f.escrow.connect(f.alice).acceptCounter(id, usd(90), 2n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNoBid")
        .withArgs(id, f.bobId);
    });

    it("reverts with TaskEscrowTermsChanged for stale terms", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      await f.escrow.connect(f.bob).counterPropose(id, usd(95), 3n * DAY);
      for (const [price, duration] of [
        [usd(90), 3n * DAY],
        [usd(95), 2n * DAY],
      ]) {
        await expect(f.escrow.connect(f.alice).acceptCounter(id, price, duration))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
          .withArgs(id);
      }
    });

    it("reverts with TaskEscrowNotAuthorized for the provider or a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      for (const who of [f.bob, f.stranger]) {
        await expect(f.escrow.connect(who).acceptCounter(id, usd(90), 3n * DAY))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.aliceId, who.address);
      }
    });

    it("reverts with TaskEscrowProviderInactive when the provider paused its agent after countering", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.escrow.connect(f.alice).acceptCounter(id, usd(90), 3n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with TaskEscrowDeadlinePassed after the acceptance deadline, TaskEscrowWrongStatus once assigned", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).counterPropose(id, usd(90), 3n * DAY);
      const accepted = await post(f);
      await f.escrow.connect(f.bob).counterPropose(accepted, usd(90), 3n * DAY);
      await f.escrow.connect(f.alice).acceptCounter(accepted, usd(90), 3n * DAY);
      await expect(f.escrow.connect(f.alice).acceptCounter(accepted, usd(90), 3n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(accepted, Status.Accepted);
      const deadline = (await f.escrow.getTask(id)).deadline;
      await passDeadline(deadline);
      await expect(f.escrow.connect(f.alice).acceptCounter(id, usd(90), 3n * DAY))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });
  });

  // ------------------------------------------------------------------ bidding

  describe("placeBid", function () {
    it("stores the bid and emits BidPlaced; one live bid per provider, replaced by a new one", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.emit(f.escrow, "BidPlaced")
        .withArgs(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, usd(130), 2n * DAY, ethers.ZeroHash);
      await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(120), 3n * DAY, ethers.ZeroHash))
        .to.emit(f.escrow, "BidPlaced")
        .withArgs(id, f.bobId, usd(120), 3n * DAY, ethers.ZeroHash);
      const bob = await f.escrow.getBid(id, f.bobId);
      const carol = await f.escrow.getBid(id, f.carolId);
      expect([bob.price, bob.eta, carol.price, carol.eta]).to.deep.equal([usd(120), 3n * DAY, usd(130), 2n * DAY]);
      expect((await f.escrow.getTask(id)).proposals).to.equal(0n);
    });

    it("stores the first 16 bytes of the proposal hash in the bid; a new bid replaces them, a withdrawal clears them", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      const bid = await f.escrow.getBid(id, f.bobId);
      expect([bid.price, bid.eta, bid.proposal]).to.deep.equal([usd(150), DAY, ethers.dataSlice(PROPOSAL_HASH, 0, 16)]);
      const other = ethers.id("another proposal");
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, other);
      expect((await f.escrow.getBid(id, f.bobId)).proposal).to.equal(ethers.dataSlice(other, 0, 16));
      await f.escrow.connect(f.bob).withdrawBid(id, f.bobId);
      expect([...(await f.escrow.getBid(id, f.bobId))]).to.deep.equal([0n, 0n, ethers.zeroPadBytes("0x", 16)]);
    });

    it("accepts a bid at the maximum budget and the eta bounds; moves no money", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await expect(
        f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(200), MIN_PERIOD, PROPOSAL_HASH),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [0n, 0n, 0n]);
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, MIN_BUDGET, MAX_PERIOD, PROPOSAL_HASH);
      expect((await f.escrow.getBid(id, f.bobId)).price).to.equal(usd(200));
      expect((await f.escrow.getBid(id, f.carolId)).eta).to.equal(MAX_PERIOD);
    });

    it("reverts with TaskEscrowBadAmount for a price of zero or above the maximum budget", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      for (const price of [0n, usd(200) + 1n]) {
        await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, price, DAY, PROPOSAL_HASH))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadAmount")
          .withArgs(price);
      }
    });

    it("reverts with TaskEscrowBadTime for an eta outside [MIN_PERIOD, MAX_PERIOD]", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      for (const eta of [MIN_PERIOD - 1n, MAX_PERIOD + 1n]) {
        await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), eta, PROPOSAL_HASH))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTime")
          .withArgs(eta);
      }
    });

    it("reverts with TaskEscrowSelfDealing for the client agent or another agent of the same owner", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await postBidding(f);
      for (const providerId of [f.aliceId, f.alice2Id]) {
        await expect(f.escrow.connect(f.alice).placeBid(id, providerId, usd(150), DAY, PROPOSAL_HASH))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowSelfDealing")
          .withArgs(f.aliceId, providerId);
      }
    });

    it("reverts with TaskEscrowScoreTooLow below the task's minimum score", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f, { minScoreBps: 6_000n });
      await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowScoreTooLow")
        .withArgs(f.bobId, NEUTRAL_SCORE, 6_000n);
    });

    it("reverts with TaskEscrowProviderInactive for a paused provider", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with TaskEscrowNotAuthorized when the caller may not act for the provider", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await expect(f.escrow.connect(f.carol).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(f.bobId, f.carol.address);
      await expect(f.escrow.connect(f.bob).placeBid(id, UNKNOWN, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
        .withArgs(UNKNOWN, f.bob.address);
    });

    it("lets the provider's agent wallet and operator bid", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await postBidding(f);
      await f.escrow.connect(f.bobWallet).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      expect((await f.escrow.getBid(id, f.bobId)).price).to.equal(usd(150));
      await f.escrow.connect(f.bobOperator).placeBid(id, f.bobId, usd(140), DAY, PROPOSAL_HASH);
      expect((await f.escrow.getBid(id, f.bobId)).price).to.equal(usd(140));
    });

    it("reverts with TaskEscrowBadTask on a direct task, TaskEscrowDeadlinePassed after the deadline", async function () {
      const f = await loadFixture(deployEscrow);
      const direct = await post(f);
      await expect(
        f.escrow.connect(f.carol).placeBid(direct, f.carolId, usd(50), DAY, PROPOSAL_HASH),
      ).to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTask");
      const id = await postBidding(f);
      const deadline = (await f.escrow.getTask(id)).deadline;
      await time.setNextBlockTimestamp(deadline);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await expect(f.escrow.connect(f.carol).placeBid(id, f.carolId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });

    it("reverts with TaskEscrowWrongStatus once the task is assigned", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await expect(f.escrow.connect(f.carol).placeBid(id, f.carolId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });
  });

  describe("withdrawBid", function () {
    it("deletes the bid and emits BidWithdrawn", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, usd(160), DAY, PROPOSAL_HASH);
      await expect(f.escrow.connect(f.bob).withdrawBid(id, f.bobId))
        .to.emit(f.escrow, "BidWithdrawn")
        .withArgs(id, f.bobId);
      const bob = await f.escrow.getBid(id, f.bobId);
      expect([bob.price, bob.eta]).to.deep.equal([0n, 0n]);
      expect((await f.escrow.getBid(id, f.carolId)).price).to.equal(usd(160));
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNoBid")
        .withArgs(id, f.bobId);
    });

    it("reverts with TaskEscrowNoBid without a live bid", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await expect(f.escrow.connect(f.bob).withdrawBid(id, f.bobId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNoBid")
        .withArgs(id, f.bobId);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.bob).withdrawBid(id, f.bobId);
      await expect(f.escrow.connect(f.bob).withdrawBid(id, f.bobId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNoBid")
        .withArgs(id, f.bobId);
    });

    it("reverts with TaskEscrowNotAuthorized for the client or a stranger; the provider's operator may withdraw", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      for (const who of [f.alice, f.stranger]) {
        await expect(f.escrow.connect(who).withdrawBid(id, f.bobId))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
      await expect(f.escrow.connect(f.bobOperator).withdrawBid(id, f.bobId))
        .to.emit(f.escrow, "BidWithdrawn")
        .withArgs(id, f.bobId);
    });
  });

  describe("selectBid", function () {
    it("assigns the bidder at its price and eta, refunds the rest to the client and deletes the bid", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.carol).placeBid(id, f.carolId, usd(170), DAY, PROPOSAL_HASH);
      const t = await pinNext();
      const tx = f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Accepted)
        .and.to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, usd(150), t + DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.carol, f.escrow], [usd(50), 0n, 0n, -usd(50)]);
      const bid = await f.escrow.getBid(id, f.bobId);
      expect([bid.price, bid.eta]).to.deep.equal([0n, 0n]);
      expect(await taskOf(f.escrow, id)).to.deep.equal(
        expectedTask(await f.usdt.getAddress(), t + DAY, {
          status: BigInt(Status.Accepted),
          mode: BigInt(Mode.Bidding),
          amount: usd(150),
          deliveryDuration: DAY,
        }),
      );
    });

    it("refunds nothing for a bid at the maximum budget; the refund goes to the client agent's wallet", async function () {
      const f = await loadFixture(actorsFixture);
      const id = await postBidding(f);
      const other = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(200), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.bob).placeBid(other, f.bobId, usd(110), DAY, PROPOSAL_HASH);
      await expect(
        f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(200), DAY, PROPOSAL_HASH),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.aliceWallet, f.escrow], [0n, 0n, 0n]);
      await expect(
        f.escrow.connect(f.operator).selectBid(other, f.bobId, usd(110), DAY, PROPOSAL_HASH),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.aliceWallet, f.operator, f.escrow], [0n, usd(90), 0n, -usd(90)]);
    });

    it("reverts with TaskEscrowNoBid for a provider without a live bid", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await expect(f.escrow.connect(f.alice).selectBid(id, f.carolId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNoBid")
        .withArgs(id, f.carolId);
    });

    it("reverts with TaskEscrowTermsChanged for a stale price or eta", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(180), 2n * DAY, PROPOSAL_HASH);
      for (const [price, eta] of [
        [usd(150), 2n * DAY],
        [usd(180), DAY],
      ]) {
        await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, price, eta, PROPOSAL_HASH))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
          .withArgs(id);
      }
    });

    it("reverts with TaskEscrowTermsChanged for another proposal hash at the same price and eta", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      // Any hash whose first 16 bytes differ, the zero hash included, is another proposal.
      const lastByteFlipped = ethers.concat([
        ethers.dataSlice(PROPOSAL_HASH, 0, 15),
        "0xff",
        ethers.dataSlice(PROPOSAL_HASH, 16),
      ]);
      for (const other of [ethers.id("another proposal"), ethers.ZeroHash, lastByteFlipped]) {
        expect(other).to.not.equal(PROPOSAL_HASH);
        await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, other))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
          .withArgs(id);
      }
      expect((await f.escrow.getTask(id)).status).to.equal(BigInt(Status.Open));
    });

    it("compares the proposal on the first 16 bytes of its hash only (what the bid stores)", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      const samePrefix = ethers.concat([ethers.dataSlice(PROPOSAL_HASH, 0, 16), ethers.ZeroHash.slice(0, 34)]);
      expect(samePrefix).to.not.equal(PROPOSAL_HASH);
      await f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, samePrefix);
      const t = await f.escrow.getTask(id);
      expect([t.status, t.providerId]).to.deep.equal([BigInt(Status.Accepted), f.bobId]);
    });

    it("reverts with TaskEscrowNotAuthorized for the bidder or a stranger", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      for (const who of [f.bob, f.stranger]) {
        await expect(f.escrow.connect(who).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.aliceId, who.address);
      }
    });

    it("reverts with TaskEscrowProviderInactive when the bidder paused its agent after bidding", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with TaskEscrowScoreTooLow when the bidder's score fell below the minimum after bidding", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await postBidding(f, { minScoreBps: NEUTRAL_SCORE });
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      await f.reputation.grantRole(REPORTER_ROLE, f.reporter.address);
      await f.reputation
        .connect(f.reporter)
        .recordTask(f.carolId, f.bobId, Outcome.Refunded, await f.usdt.getAddress(), usd(10));
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowScoreTooLow")
        .withArgs(f.bobId, 2_500n, NEUTRAL_SCORE);
    });

    it("reverts with TaskEscrowDeadlinePassed after the acceptance deadline and TaskEscrowBadTask on a direct task", async function () {
      const f = await loadFixture(deployEscrow);
      const direct = await post(f);
      await expect(
        f.escrow.connect(f.alice).selectBid(direct, f.bobId, usd(100), DAY, PROPOSAL_HASH),
      ).to.be.revertedWithCustomError(f.escrow, "TaskEscrowBadTask");
      const id = await postBidding(f);
      await f.escrow.connect(f.bob).placeBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH);
      const deadline = (await f.escrow.getTask(id)).deadline;
      await passDeadline(deadline);
      await expect(f.escrow.connect(f.alice).selectBid(id, f.bobId, usd(150), DAY, PROPOSAL_HASH))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(id, deadline);
    });
  });

  // ------------------------------------------------------------------ claimTask

  describe("claimTask", function () {
    it("assigns the claiming provider at the budget and refunds the rest of the maximum budget", async function () {
      const f = await loadFixture(serviceFixture);
      const id = await postAuto(f);
      const t = await pinNext();
      const tx = f.escrow.connect(f.bob).claimTask(id, f.bobId, f.serviceId);
      await expect(tx)
        .to.emit(f.escrow, "TaskStateChanged")
        .withArgs(id, Status.Open, Status.Accepted)
        .and.to.emit(f.escrow, "TaskAssigned")
        .withArgs(id, f.bobId, usd(80), t + 2n * DAY);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.escrow], [usd(20), 0n, -usd(20)]);
      expect(await taskOf(f.escrow, id)).to.deep.equal(
        expectedTask(await f.usdt.getAddress(), t + 2n * DAY, {
          status: BigInt(Status.Accepted),
          mode: BigInt(Mode.AutoMatch),
          amount: usd(80),
          capability: CAPABILITY,
        }),
      );
    });

    it("moves no money when the budget is the maximum budget", async function () {
      const f = await loadFixture(serviceFixture);
      const id = await postAuto(f, { budget: usd(100) });
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, f.serviceId)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.escrow],
        [0n, 0n, 0n],
      );
      expect((await f.escrow.getTask(id)).amount).to.equal(usd(100));
    });

    it("reverts with TaskEscrowServiceMismatch for another agent's service", async function () {
      const f = await loadFixture(serviceFixture);
      const carolService = await listQuoted(f, f.carol, f.carolId);
      const id = await postAuto(f);
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, carolService))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowServiceMismatch")
        .withArgs(carolService);
    });

    it("reverts with TaskEscrowServiceMismatch for an inactive service", async function () {
      const f = await loadFixture(serviceFixture);
      await f.registry.connect(f.bob).updateService(f.serviceId, ethers.ZeroAddress, 0, false, "https://bob.example");
      const id = await postAuto(f);
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, f.serviceId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowServiceMismatch")
        .withArgs(f.serviceId);
    });

    it("reverts with TaskEscrowServiceMismatch for a service listing another capability", async function () {
      const f = await loadFixture(serviceFixture);
      const other = await listQuoted(f, f.bob, f.bobId, ethers.id("translate:en-de"));
      const id = await postAuto(f);
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, other))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowServiceMismatch")
        .withArgs(other);
    });

    it("reverts with the registry's AgentRegistryUnknownService for an unknown service", async function () {
      const f = await loadFixture(serviceFixture);
      const id = await postAuto(f);
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, UNKNOWN))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryUnknownService")
        .withArgs(UNKNOWN);
    });

    it("reverts with TaskEscrowSelfDealing for the client agent or another agent of the same owner", async function () {
      const f = await loadFixture(actorsFixture);
      const own = await listQuoted(f, f.alice, f.aliceId);
      const sibling = await listQuoted(f, f.alice, f.alice2Id);
      const id = await postAuto(f);
      for (const [providerId, serviceId] of [
        [f.aliceId, own],
        [f.alice2Id, sibling],
      ]) {
        await expect(f.escrow.connect(f.alice).claimTask(id, providerId, serviceId))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowSelfDealing")
          .withArgs(f.aliceId, providerId);
      }
    });

    it("reverts with TaskEscrowProviderInactive for a paused provider", async function () {
      const f = await loadFixture(serviceFixture);
      const id = await postAuto(f);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.escrow.connect(f.bob).claimTask(id, f.bobId, f.serviceId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowProviderInactive")
        .withArgs(f.bobId);
    });

    it("reverts with TaskEscrowScoreTooLow below the minimum score; the neutral score meets a 5,000 minimum", async function () {
      const f = await loadFixture(serviceFixture);
      const strict = await postAuto(f, { minScoreBps: 6_000n });
      const neutral = await postAuto(f, { minScoreBps: NEUTRAL_SCORE });
      await expect(f.escrow.connect(f.bob).claimTask(strict, f.bobId, f.serviceId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowScoreTooLow")
        .withArgs(f.bobId, NEUTRAL_SCORE, 6_000n);
      const t = await pinNext();
      await expect(f.escrow.connect(f.bob).claimTask(neutral, f.bobId, f.serviceId))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(neutral, f.bobId, usd(80), t + 2n * DAY);
    });

    it("lets the provider's agent wallet or operator claim", async function () {
      const f = await loadFixture(actorsFixture);
      const serviceId = await listQuoted(f, f.bob, f.bobId);
      const first = await postAuto(f);
      const second = await postAuto(f);
      await expect(f.escrow.connect(f.bobWallet).claimTask(first, f.bobId, serviceId)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.aliceWallet, f.bobWallet, f.escrow],
        [0n, usd(20), 0n, -usd(20)],
      );
      const t = await pinNext();
      await expect(f.escrow.connect(f.bobOperator).claimTask(second, f.bobId, serviceId))
        .to.emit(f.escrow, "TaskAssigned")
        .withArgs(second, f.bobId, usd(80), t + 2n * DAY);
    });

    it("reverts with TaskEscrowNotAuthorized when the caller may not act for the provider", async function () {
      const f = await loadFixture(serviceFixture);
      const id = await postAuto(f);
      for (const who of [f.carol, f.alice]) {
        await expect(f.escrow.connect(who).claimTask(id, f.bobId, f.serviceId))
          .to.be.revertedWithCustomError(f.escrow, "TaskEscrowNotAuthorized")
          .withArgs(f.bobId, who.address);
      }
    });

    it("reverts with TaskEscrowBadTask on a non-auto-match task, TaskEscrowWrongStatus once claimed", async function () {
      const f = await loadFixture(serviceFixture);
      const bidding = await postBidding(f);
      await expect(f.escrow.connect(f.bob).claimTask(bidding, f.bobId, f.serviceId)).to.be.revertedWithCustomError(
        f.escrow,
        "TaskEscrowBadTask",
      );
      const carolService = await listQuoted(f, f.carol, f.carolId);
      const id = await postAuto(f);
      await f.escrow.connect(f.bob).claimTask(id, f.bobId, f.serviceId);
      await expect(f.escrow.connect(f.carol).claimTask(id, f.carolId, carolService))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowWrongStatus")
        .withArgs(id, Status.Accepted);
    });

    it("claims in the acceptance deadline's second; reverts with TaskEscrowDeadlinePassed after it", async function () {
      const f = await loadFixture(serviceFixture);
      const first = await postAuto(f);
      const second = await postAuto(f);
      const d1 = (await f.escrow.getTask(first)).deadline;
      const d2 = (await f.escrow.getTask(second)).deadline;
      await time.setNextBlockTimestamp(d1);
      await expect(f.escrow.connect(f.bob).claimTask(first, f.bobId, f.serviceId)).to.emit(f.escrow, "TaskAssigned");
      await passDeadline(d2);
      await expect(f.escrow.connect(f.bob).claimTask(second, f.bobId, f.serviceId))
        .to.be.revertedWithCustomError(f.escrow, "TaskEscrowDeadlinePassed")
        .withArgs(second, d2);
    });
  });

  // ------------------------------------------------------------------ views

  describe("views", function () {
    it("return zero values for unknown tasks, bids, counters, disputes, credits and fees", async function () {
      const f = await loadFixture(deployEscrow);
      const usdtAddr = await f.usdt.getAddress();
      expect(await taskOf(f.escrow, UNKNOWN)).to.deep.equal({
        ...expectedTask(ethers.ZeroAddress, 0n),
        amount: 0n,
        clientId: 0n,
        providerId: 0n,
        status: BigInt(Status.None),
        feeBps: 0n,
        arbitrationFeeBps: 0n,
        deliveryDuration: 0n,
        reviewPeriod: 0n,
      });
      const bid = await f.escrow.getBid(UNKNOWN, f.bobId);
      const counter = await f.escrow.getCounter(UNKNOWN);
      const dispute = await f.escrow.getDispute(UNKNOWN);
      expect([bid.price, bid.eta, counter.price, counter.deliveryDuration]).to.deep.equal([0n, 0n, 0n, 0n]);
      expect([dispute.arbitrator, dispute.deposit, dispute.disputeId]).to.deep.equal([ethers.ZeroAddress, 0n, 0n]);
      expect(await f.escrow.creditOf(usdtAddr, f.alice.address)).to.equal(0n);
      expect(await f.escrow.accruedFees(usdtAddr)).to.equal(0n);
      expect(await f.escrow.nonceUsed(f.bobId, 0n)).to.equal(false);
    });

    it("minBudget gives the allow-listed minimum, 0 for other tokens", async function () {
      const f = await loadFixture(deployEscrow);
      expect(await f.escrow.minBudget(await f.usdt.getAddress())).to.equal(MIN_BUDGET);
      expect(await f.escrow.minBudget(await f.usdg.getAddress())).to.equal(MIN_BUDGET);
      expect(await f.escrow.minBudget(await f.okb.getAddress())).to.equal(0n);
    });

    it("getDispute has no dispute for an open or assigned task", async function () {
      const f = await loadFixture(deployEscrow);
      const id = await post(f);
      await f.escrow.connect(f.bob).acceptTask(id, usd(100), 2n * DAY);
      const dispute = await f.escrow.getDispute(id);
      expect([dispute.arbitrator, dispute.deposit, dispute.disputeId]).to.deep.equal([ethers.ZeroAddress, 0n, 0n]);
    });

    it("taskCount counts tasks of every mode and agreements", async function () {
      const f = await loadFixture(deployEscrow);
      await post(f);
      await postBidding(f);
      await postAuto(f);
      const a = await agreement(f);
      await hire(f, a, f.bob.address, await signAgreement(f.escrow, f.bob, a));
      expect(await f.escrow.taskCount()).to.equal(4n);
    });
  });
});
