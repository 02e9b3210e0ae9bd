import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, mine, setBalance, takeSnapshot, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { EvaluatorStaking__factory } from "../../typechain-types";
import {
  ARBITRABLE_ROLE,
  COURT_PARAMS,
  COURT_TIMING,
  CaseStatus,
  Choice,
  MIN_STAKE,
  OKB,
  Phase,
  deployCourt,
  drawJury,
  fulfilRandomness,
  jurorSigner,
  openCase,
  revealAll,
  stakeFor,
  vote,
  waitForStakingTime,
  type CourtFixture,
} from "../fixtures/court";
import { DAY } from "../fixtures/escrow";
import { DEFAULT_ADMIN_ROLE, PARAMETER_ROLE } from "../fixtures/system";
import { now, signAgentWallet, usd } from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const WEIGHT_UNIT = 10n ** 16n;
const MAX_STAKE = 10n ** 25n;
const FALLBACK_BLOCKS = 20n;
const NATIVE = ethers.ZeroAddress;
const STAKE = OKB(100);
/** Weight of a default evaluator (100 OKB). */
const W100 = STAKE / WEIGHT_UNIT;
/** The fee of the fixture's case: 5% of 100 USDT. */
const CASE_FEE = usd(5);
const coder = ethers.AbiCoder.defaultAbiCoder();

// ---------------------------------------------------------------------- fixtures

function nativeCourt() {
  return deployCourt();
}

function erc20Court() {
  return deployCourt({ erc20: true });
}

/** Evaluators registered but none staked. */
function unstakedCourt() {
  return deployCourt({ stake: 0n });
}

/** The native court with one case waiting for a draw. */
async function withCase() {
  const f = await deployCourt();
  const { taskId, caseId } = await openCase(f);
  return { ...f, taskId, caseId };
}

/** One case waiting, randomness requested: the Generating phase. */
async function generating() {
  const f = await withCase();
  await waitForStakingTime(f.court);
  await f.court.requestRandomness();
  const [, , , requestId] = await f.court.drawState();
  return { ...f, requestId };
}

/** One case waiting, randomness delivered: the Drawing phase. */
async function drawing() {
  const f = await withCase();
  const requestId = await fulfilRandomness(f, 12345n);
  return { ...f, requestId, word: 12345n };
}

/** The case's jury drawn and the phase passed back to Staking. */
async function seated() {
  const f = await drawing();
  const jurors = await drawJury(f, f.caseId);
  await f.court.passPhase();
  return { ...f, jurors };
}

/** Stakes of eleven evaluators, unequal and not multiples of WEIGHT_UNIT (weights are floored). */
const ELEVEN_STAKES = ["100", "35.5", "250", "10", "12.345678", "180", "64.25", "99.999999", "300", "17", "42"].map(
  (n) => OKB(n),
);

/**
 * Eleven evaluators (leaves 0-10: two bottom nodes of the tree, two id words of the leaf map) and a
 * twelfth staked agent owned by alice (leaf 11, never eligible); cases seat 7 jurors.
 */
async function elevenEvaluators() {
  const f = await deployCourt({ evaluators: 11, stake: ELEVEN_STAKES });
  const aliceEvaluator = await register(f, f.alice);
  await f.court.connect(f.alice).stake(aliceEvaluator, STAKE, { value: STAKE });
  await f.court.setParams(params({ jurySize: 7 }));
  const { caseId } = await openCase(f);
  return { ...f, caseId, aliceEvaluator };
}

// ---------------------------------------------------------------------- helpers

type F = CourtFixture;

/** Pins the next block's timestamp `offset` seconds after the latest and returns it. */
async function pin(offset = 10n) {
  const t = (await now()) + offset;
  await time.setNextBlockTimestamp(t);
  return t;
}

/** The agent ids and signers of the fixture's evaluators. */
const ev = (f: F, i: number) => f.evaluators[i];

/** `owner` registers a new agent; returns its id. */
async function register(f: F, owner: HardhatEthersSigner) {
  await f.registry.connect(owner).getFunction("register(string)")("ipfs://extra");
  return f.registry.agentCount();
}

/** Sets `wallet` as agent wallet of `agentId` (owned by `owner`). */
async function setWallet(f: F, owner: HardhatEthersSigner, agentId: bigint, wallet: HardhatEthersSigner) {
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(f.registry, wallet, agentId, wallet.address, owner.address, deadline);
  await f.registry.connect(owner).setAgentWallet(agentId, wallet.address, deadline, signature);
}

/** extraData as TaskEscrow encodes it. */
function extraData(f: F, fee: bigint, token: string, clientId = 1n, providerId = 2n, externalId = 77n) {
  return coder.encode(
    ["uint256", "uint256", "uint256", "address", "uint256"],
    [externalId, clientId, providerId, token, fee],
  );
}

/** The court's native balance equals what it books as held. */
async function expectSolvent(f: F) {
  const address = await f.court.getAddress();
  expect(await ethers.provider.getBalance(address)).to.equal(await f.court.held(NATIVE));
  expect(await f.usdt.balanceOf(address)).to.equal(await f.court.held(await f.usdt.getAddress()));
}

/** Leaves of the 8-ary sum tree (SortitionTree: depth 5, 8^5 leaves). */
const TREE_DEPTH = 5;
const TREE_LEAVES = 8 ** TREE_DEPTH;

/**
 * SortitionTree.draw replicated: descends the 8-ary tree from the root, at each level taking the
 * first of the eight lanes (subtree sums) whose range contains `point`. `weights[k]` is leaf k's.
 */
function treeDraw(weights: bigint[], point: bigint): number {
  const sum = (from: number, span: number) => weights.slice(from, from + span).reduce((s, w) => s + w, 0n);
  let first = 0;
  let span = TREE_LEAVES;
  for (let level = 0; level < TREE_DEPTH; level++) {
    span /= 8;
    let lane = 0;
    for (; lane < 7; lane++) {
      const value = sum(first + lane * span, span);
      if (point < value) break;
      point -= value;
    }
    first += lane * span;
  }
  return first;
}

/**
 * JuryLogic.drawSeats replicated: candidate `nonce` is the leaf of
 * uint256(keccak256(abi.encode(word, caseId, round, nonce))) % total; `eligible` decides whether
 * it is seated (given the seats so far). `leaves` lists the pool in leaf (allocation) order.
 */
function replicateDraw(
  word: bigint,
  caseId: bigint,
  round: bigint,
  leaves: { id: bigint; weight: bigint }[],
  size: number,
  eligible: (id: bigint, seats: bigint[]) => boolean,
  maxIterations = 1_000,
) {
  const weights = leaves.map((l) => l.weight);
  const total = weights.reduce((s, w) => s + w, 0n);
  const seats: bigint[] = [];
  for (let nonce = 0n; seats.length < size && nonce < BigInt(maxIterations); nonce++) {
    const point =
      BigInt(
        ethers.keccak256(coder.encode(["uint256", "uint256", "uint256", "uint256"], [word, caseId, round, nonce])),
      ) % total;
    const id = leaves[treeDraw(weights, point)].id;
    if (eligible(id, seats)) seats.push(id);
  }
  return seats;
}

/** Parameters with one field overridden. */
const params = (over: Partial<typeof COURT_PARAMS> = {}) => ({ ...COURT_PARAMS, ...over });
const timing = (over: Partial<typeof COURT_TIMING> = {}) => ({ ...COURT_TIMING, ...over });

// ---------------------------------------------------------------------- tests

describe("EvaluatorStaking", function () {
  describe("initialize", function () {
    it("sets the contracts, the stake asset, the parameters and the Staking phase", async function () {
      const f = await loadFixture(nativeCourt);
      const [registry, reputation, source, treasury] = await f.court.contracts();
      expect(registry).to.equal(await f.registry.getAddress());
      expect(reputation).to.equal(await f.reputation.getAddress());
      expect(source).to.equal(await f.vrfSource.getAddress());
      expect(treasury).to.equal(f.treasury.address);
      expect(await f.court.stakeToken()).to.equal(NATIVE);
      expect(await f.court.params()).to.deep.equal(Object.values(COURT_PARAMS));
      expect(await f.court.timing()).to.deep.equal(Object.values(COURT_TIMING));
      const [phase, epoch, , requestId, pendingCases, casesThisEpoch, fallbackBlock] = await f.court.drawState();
      expect([phase, epoch, requestId, pendingCases, casesThisEpoch, fallbackBlock]).to.deep.equal([
        BigInt(Phase.Staking),
        0n,
        0n,
        0n,
        0n,
        0n,
      ]);
      expect(await f.court.VERSION()).to.equal("1.0.0");
      expect(await f.court.hasRole(DEFAULT_ADMIN_ROLE, f.admin.address)).to.equal(true);
      expect(await f.court.hasRole(ARBITRABLE_ROLE, await f.escrow.getAddress())).to.equal(true);
    });

    it("the ERC-20 court stakes the mock OKB", async function () {
      const f = await loadFixture(erc20Court);
      expect(await f.court.stakeToken()).to.equal(await f.okb.getAddress());
    });

    it("cannot run twice (InvalidInitialization)", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(
        f.court.initialize(
          f.admin.address,
          await f.registry.getAddress(),
          await f.reputation.getAddress(),
          await f.vrfSource.getAddress(),
          NATIVE,
          f.treasury.address,
          COURT_PARAMS,
          COURT_TIMING,
        ),
      ).to.be.revertedWithCustomError(f.court, "InvalidInitialization");
    });

    it("the implementation is locked (InvalidInitialization)", async function () {
      const f = await loadFixture(nativeCourt);
      const impl = EvaluatorStaking__factory.connect(f.courtImpl, f.admin);
      await expect(
        impl.initialize(
          f.admin.address,
          await f.registry.getAddress(),
          await f.reputation.getAddress(),
          await f.vrfSource.getAddress(),
          NATIVE,
          f.treasury.address,
          COURT_PARAMS,
          COURT_TIMING,
        ),
      ).to.be.revertedWithCustomError(impl, "InvalidInitialization");
    });
  });

  // ------------------------------------------------------------------ staking

  describe("stake (native)", function () {
    it("adds to the pool: Staked, StakeSynced, weight, total weight, held and the coin", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      const tx = f.court.connect(signer).stake(id, OKB(5), { value: OKB(5) });
      await expect(tx).to.emit(f.court, "Staked").withArgs(id, signer.address, OKB(5), false);
      await expect(tx)
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, OKB(105), OKB(105) / WEIGHT_UNIT);
      await expect(tx).to.changeEtherBalances([signer, f.court], [-OKB(5), OKB(5)]);
      const e = await f.court.getEvaluator(id);
      expect(e.staked).to.equal(OKB(105));
      expect(e.pending).to.equal(0n);
      expect(e.leaf).to.equal(1n);
      expect(await f.court.weightOf(id)).to.equal(OKB(105) / WEIGHT_UNIT);
      expect(await f.court.totalWeight()).to.equal(4n * W100 + OKB(105) / WEIGHT_UNIT);
      expect(await f.court.held(NATIVE)).to.equal(OKB(505));
      await expectSolvent(f);
    });

    it("gives a new evaluator the next leaf; below the minimum it has no weight and no leaf", async function () {
      const f = await loadFixture(unstakedCourt);
      const a = ev(f, 0);
      const b = ev(f, 1);
      await expect(f.court.connect(a.signer).stake(a.id, MIN_STAKE - 1n, { value: MIN_STAKE - 1n }))
        .to.emit(f.court, "StakeSynced")
        .withArgs(a.id, MIN_STAKE - 1n, 0n);
      expect((await f.court.getEvaluator(a.id)).leaf).to.equal(0n);
      expect(await f.court.weightOf(a.id)).to.equal(0n);
      expect(await f.court.totalWeight()).to.equal(0n);
      await f.court.connect(b.signer).stake(b.id, MIN_STAKE, { value: MIN_STAKE });
      expect((await f.court.getEvaluator(b.id)).leaf).to.equal(1n);
      await expect(f.court.connect(a.signer).stake(a.id, 1n, { value: 1n }))
        .to.emit(f.court, "StakeSynced")
        .withArgs(a.id, MIN_STAKE, MIN_STAKE / WEIGHT_UNIT);
      expect((await f.court.getEvaluator(a.id)).leaf).to.equal(2n);
      expect(await f.court.totalWeight()).to.equal((2n * MIN_STAKE) / WEIGHT_UNIT);
    });

    it("an operator of the agent may stake for it", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      const expiry = (await now()) + 30n * DAY;
      await f.registry
        .connect(signer)
        .setOperator(id, f.operator.address, { expiry, minScoreBps: 0, allowListOnly: false });
      const tx = f.court.connect(f.operator).stake(id, OKB(1), { value: OKB(1) });
      await expect(tx).to.emit(f.court, "Staked").withArgs(id, f.operator.address, OKB(1), false);
      await expect(tx).to.changeEtherBalances([f.operator, f.court], [-OKB(1), OKB(1)]);
      expect((await f.court.getEvaluator(id)).staked).to.equal(OKB(101));
    });

    it("reverts EvaluatorStakingBadValue when msg.value differs from the amount", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).stake(id, OKB(5), { value: OKB(4) }))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingBadValue")
        .withArgs(OKB(5), OKB(4));
      await expect(f.court.connect(signer).stake(id, OKB(5)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingBadValue")
        .withArgs(OKB(5), 0n);
    });

    it("reverts EvaluatorStakingZeroAmount for 0", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).stake(id, 0n)).to.be.revertedWithCustomError(
        f.court,
        "EvaluatorStakingZeroAmount",
      );
    });

    it("reverts EvaluatorStakingNotAuthorized for a stranger", async function () {
      const f = await loadFixture(nativeCourt);
      const { id } = ev(f, 0);
      await expect(f.court.connect(f.stranger).stake(id, OKB(1), { value: OKB(1) }))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(id, f.stranger.address);
    });

    it("reverts EvaluatorStakingStakeTooLarge above MAX_STAKE (staked + pending + unstaking + amount)", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      expect(await f.court.MAX_STAKE()).to.equal(MAX_STAKE);
      await f.court.connect(signer).requestUnstake(id, OKB(40));
      const amount = MAX_STAKE - OKB(100) + 1n;
      await expect(f.court.connect(signer).stake(id, amount))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingStakeTooLarge")
        .withArgs(id, MAX_STAKE + 1n, MAX_STAKE);
    });

    it("reverts EnforcedPause while paused", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await f.court.pause();
      await expect(f.court.connect(signer).stake(id, OKB(1), { value: OKB(1) })).to.be.revertedWithCustomError(
        f.court,
        "EnforcedPause",
      );
    });
  });

  describe("stake (ERC-20)", function () {
    it("pulls the token: Staked, StakeSynced, weight and exact token balances", async function () {
      const f = await loadFixture(erc20Court);
      const { signer, id } = ev(f, 0);
      await f.okb.mint(signer.address, OKB(7));
      await f.okb.connect(signer).approve(await f.court.getAddress(), OKB(7));
      const tx = f.court.connect(signer).stake(id, OKB(7));
      await expect(tx).to.emit(f.court, "Staked").withArgs(id, signer.address, OKB(7), false);
      await expect(tx)
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, OKB(107), OKB(107) / WEIGHT_UNIT);
      await expect(tx).to.changeTokenBalances(f.okb, [signer, f.court], [-OKB(7), OKB(7)]);
      expect(await f.court.weightOf(id)).to.equal(OKB(107) / WEIGHT_UNIT);
      expect(await f.court.held(await f.okb.getAddress())).to.equal(OKB(507));
      expect(await f.okb.balanceOf(await f.court.getAddress())).to.equal(OKB(507));
    });

    it("reverts EvaluatorStakingBadValue when native coin is sent", async function () {
      const f = await loadFixture(erc20Court);
      const { signer, id } = ev(f, 0);
      await f.okb.mint(signer.address, OKB(7));
      await f.okb.connect(signer).approve(await f.court.getAddress(), OKB(7));
      await expect(f.court.connect(signer).stake(id, OKB(7), { value: 1n }))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingBadValue")
        .withArgs(OKB(7), 1n);
    });

    it("reverts without an allowance (ERC20InsufficientAllowance)", async function () {
      const f = await loadFixture(erc20Court);
      const { signer, id } = ev(f, 0);
      await f.okb.mint(signer.address, OKB(7));
      await expect(f.court.connect(signer).stake(id, OKB(7)))
        .to.be.revertedWithCustomError(f.okb, "ERC20InsufficientAllowance")
        .withArgs(await f.court.getAddress(), 0n, OKB(7));
    });
  });

  describe("pending stake and syncStake", function () {
    it("queues stake during Generating and Drawing; syncStake joins it in the next Staking phase", async function () {
      const f = await loadFixture(generating);
      const { signer, id } = ev(f, 0);
      const tx = f.court.connect(signer).stake(id, OKB(5), { value: OKB(5) });
      await expect(tx).to.emit(f.court, "Staked").withArgs(id, signer.address, OKB(5), true);
      await expect(tx).to.not.emit(f.court, "StakeSynced");
      let e = await f.court.getEvaluator(id);
      expect([e.staked, e.pending]).to.deep.equal([STAKE, OKB(5)]);
      expect(await f.court.weightOf(id)).to.equal(W100);
      await expect(f.court.syncStake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);

      await f.coordinator.fulfillRandomWords(f.requestId, await f.vrfSource.getAddress());
      await expect(f.court.connect(signer).stake(id, OKB(1), { value: OKB(1) }))
        .to.emit(f.court, "Staked")
        .withArgs(id, signer.address, OKB(1), true);
      await expect(f.court.syncStake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Drawing);
      expect(await f.court.held(NATIVE)).to.equal(OKB(506));

      await drawJury(f, f.caseId);
      await f.court.passPhase();
      await expect(f.court.connect(f.stranger).syncStake(id))
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, OKB(106), OKB(106) / WEIGHT_UNIT);
      e = await f.court.getEvaluator(id);
      expect([e.staked, e.pending]).to.deep.equal([OKB(106), 0n]);
      expect(await f.court.weightOf(id)).to.equal(OKB(106) / WEIGHT_UNIT);
      await expectSolvent(f);
    });

    it("the evaluator's next stake in the Staking phase syncs the pending stake too", async function () {
      const f = await loadFixture(generating);
      const { signer, id } = ev(f, 1);
      await f.court.connect(signer).stake(id, OKB(5), { value: OKB(5) });
      await f.coordinator.fulfillRandomWords(f.requestId, await f.vrfSource.getAddress());
      await drawJury(f, f.caseId);
      await f.court.passPhase();
      await expect(f.court.connect(signer).stake(id, OKB(1), { value: OKB(1) }))
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, OKB(106), OKB(106) / WEIGHT_UNIT);
    });

    it("syncStake of an agent with nothing pending re-emits its stake", async function () {
      const f = await loadFixture(nativeCourt);
      const { id } = ev(f, 2);
      await expect(f.court.syncStake(id)).to.emit(f.court, "StakeSynced").withArgs(id, STAKE, W100);
    });
  });

  describe("requestUnstake", function () {
    it("moves free stake out of the pool: UnstakeRequested, StakeSynced and lower weights", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      const t = await pin();
      const tx = f.court.connect(signer).requestUnstake(id, OKB(30));
      await expect(tx)
        .to.emit(f.court, "UnstakeRequested")
        .withArgs(id, OKB(30), OKB(30), t + BigInt(COURT_TIMING.unstakeDelay));
      await expect(tx)
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, OKB(70), OKB(70) / WEIGHT_UNIT);
      await expect(tx).to.changeEtherBalances([signer, f.court], [0n, 0n]);
      const e = await f.court.getEvaluator(id);
      expect([e.staked, e.unstaking, e.unstakeAt]).to.deep.equal([
        OKB(70),
        OKB(30),
        t + BigInt(COURT_TIMING.unstakeDelay),
      ]);
      expect(await f.court.weightOf(id)).to.equal(OKB(70) / WEIGHT_UNIT);
      expect(await f.court.totalWeight()).to.equal(4n * W100 + OKB(70) / WEIGHT_UNIT);
      expect(await f.court.held(NATIVE)).to.equal(OKB(500));
    });

    it("a second request adds to the open one and restarts the cooldown", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      const t = await pin(1000n);
      await expect(f.court.connect(signer).requestUnstake(id, OKB(20)))
        .to.emit(f.court, "UnstakeRequested")
        .withArgs(id, OKB(20), OKB(50), t + BigInt(COURT_TIMING.unstakeDelay));
      expect((await f.court.getEvaluator(id)).unstakeAt).to.equal(t + BigInt(COURT_TIMING.unstakeDelay));
    });

    it("below the minimum stake the weight is 0 and the leaf is freed, then reused by the next staker", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 2);
      expect((await f.court.getEvaluator(id)).leaf).to.equal(3n);
      await expect(f.court.connect(signer).requestUnstake(id, STAKE - MIN_STAKE + 1n))
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, MIN_STAKE - 1n, 0n);
      expect((await f.court.getEvaluator(id)).leaf).to.equal(0n);
      expect(await f.court.weightOf(id)).to.equal(0n);
      expect(await f.court.totalWeight()).to.equal(4n * W100);
      const carolId = f.carolId;
      await f.court.connect(f.carol).stake(carolId, MIN_STAKE, { value: MIN_STAKE });
      expect((await f.court.getEvaluator(carolId)).leaf).to.equal(3n);
      expect(await f.court.weightOf(carolId)).to.equal(MIN_STAKE / WEIGHT_UNIT);
      // The evaluator back above the minimum takes a fresh leaf.
      await f.court.connect(signer).stake(id, 1n, { value: 1n });
      expect((await f.court.getEvaluator(id)).leaf).to.equal(6n);
    });

    it("counts pending stake as free and merges it", async function () {
      const f = await loadFixture(generating);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).stake(id, OKB(10), { value: OKB(10) });
      await f.coordinator.fulfillRandomWords(f.requestId, await f.vrfSource.getAddress());
      await drawJury(f, f.caseId);
      await f.court.passPhase();
      const locked = (await f.court.getEvaluator(id)).locked;
      const free = OKB(110) - locked;
      await expect(f.court.connect(signer).requestUnstake(id, free + 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingInsufficientFreeStake")
        .withArgs(id, free + 1n, free);
      await expect(f.court.connect(signer).requestUnstake(id, free))
        .to.emit(f.court, "StakeSynced")
        .withArgs(id, locked, locked / WEIGHT_UNIT);
      const e = await f.court.getEvaluator(id);
      expect([e.staked, e.pending, e.unstaking]).to.deep.equal([locked, 0n, free]);
    });

    it("reverts EvaluatorStakingInsufficientFreeStake above the stake", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).requestUnstake(id, STAKE + 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingInsufficientFreeStake")
        .withArgs(id, STAKE + 1n, STAKE);
    });

    it("reverts EvaluatorStakingInsufficientFreeStake into the stake a drawn juror has locked", async function () {
      const f = await loadFixture(seated);
      const juror = f.jurors[0];
      expect((await f.court.getEvaluator(juror)).locked).to.equal(MIN_STAKE);
      const free = STAKE - MIN_STAKE;
      await expect(f.court.connect(jurorSigner(f, juror)).requestUnstake(juror, free + 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingInsufficientFreeStake")
        .withArgs(juror, free + 1n, free);
      await expect(f.court.connect(jurorSigner(f, juror)).requestUnstake(juror, free))
        .to.emit(f.court, "StakeSynced")
        .withArgs(juror, MIN_STAKE, MIN_STAKE / WEIGHT_UNIT);
    });

    it("reverts EvaluatorStakingWrongPhase outside the Staking phase", async function () {
      const f = await loadFixture(generating);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).requestUnstake(id, OKB(1)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
    });

    it("reverts EvaluatorStakingZeroAmount and EvaluatorStakingNotAuthorized", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).requestUnstake(id, 0n)).to.be.revertedWithCustomError(
        f.court,
        "EvaluatorStakingZeroAmount",
      );
      await expect(f.court.connect(f.stranger).requestUnstake(id, OKB(1)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(id, f.stranger.address);
    });
  });

  describe("cancelUnstake", function () {
    it("puts the request back into the pool", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      const tx = f.court.connect(signer).cancelUnstake(id);
      await expect(tx).to.emit(f.court, "UnstakeCancelled").withArgs(id, OKB(30));
      await expect(tx).to.emit(f.court, "StakeSynced").withArgs(id, STAKE, W100);
      const e = await f.court.getEvaluator(id);
      expect([e.staked, e.pending, e.unstaking, e.unstakeAt]).to.deep.equal([STAKE, 0n, 0n, 0n]);
      expect(await f.court.weightOf(id)).to.equal(W100);
    });

    it("during a draw epoch the amount waits as pending", async function () {
      const f = await loadFixture(withCase);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const tx = f.court.connect(signer).cancelUnstake(id);
      await expect(tx).to.emit(f.court, "UnstakeCancelled").withArgs(id, OKB(30));
      await expect(tx).to.not.emit(f.court, "StakeSynced");
      const e = await f.court.getEvaluator(id);
      expect([e.staked, e.pending, e.unstaking]).to.deep.equal([OKB(70), OKB(30), 0n]);
      expect(await f.court.weightOf(id)).to.equal(OKB(70) / WEIGHT_UNIT);
    });

    it("reverts EvaluatorStakingNoUnstake without a request, NotAuthorized for a stranger", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).cancelUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNoUnstake")
        .withArgs(id);
      await expect(f.court.connect(f.stranger).cancelUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(id, f.stranger.address);
    });
  });

  describe("claimUnstake", function () {
    it("reverts EvaluatorStakingUnstakeNotReady before the cooldown, pays from unstakeAt on", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      const at = (await f.court.getEvaluator(id)).unstakeAt;
      await time.setNextBlockTimestamp(at - 1n);
      await expect(f.court.connect(signer).claimUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnstakeNotReady")
        .withArgs(id, at);
      await time.setNextBlockTimestamp(at);
      const tx = f.court.connect(signer).claimUnstake(id);
      await expect(tx).to.emit(f.court, "UnstakeClaimed").withArgs(id, signer.address, OKB(30));
      await expect(tx).to.changeEtherBalances([signer, f.court], [OKB(30), -OKB(30)]);
      const e = await f.court.getEvaluator(id);
      expect([e.staked, e.unstaking, e.unstakeAt]).to.deep.equal([OKB(70), 0n, 0n]);
      expect(await f.court.held(NATIVE)).to.equal(OKB(470));
      await expectSolvent(f);
      await expect(f.court.connect(signer).claimUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNoUnstake")
        .withArgs(id);
    });

    it("pays the agent wallet, not the caller", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await setWallet(f, signer, id, f.dave);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      await time.increase(COURT_TIMING.unstakeDelay);
      const tx = f.court.connect(signer).claimUnstake(id);
      await expect(tx).to.emit(f.court, "UnstakeClaimed").withArgs(id, f.dave.address, OKB(30));
      await expect(tx).to.changeEtherBalances([f.dave, signer, f.court], [OKB(30), 0n, -OKB(30)]);
    });

    it("works while paused and during a draw epoch", async function () {
      const f = await loadFixture(withCase);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      await f.court.pause();
      await time.increase(COURT_TIMING.unstakeDelay);
      await expect(f.court.connect(signer).claimUnstake(id)).to.changeEtherBalances(
        [signer, f.court],
        [OKB(30), -OKB(30)],
      );
    });

    it("pays the stake token in ERC-20 mode", async function () {
      const f = await loadFixture(erc20Court);
      const { signer, id } = ev(f, 0);
      await f.court.connect(signer).requestUnstake(id, OKB(30));
      await time.increase(COURT_TIMING.unstakeDelay);
      await expect(f.court.connect(signer).claimUnstake(id)).to.changeTokenBalances(
        f.okb,
        [signer, f.court],
        [OKB(30), -OKB(30)],
      );
      expect(await f.court.held(await f.okb.getAddress())).to.equal(OKB(470));
    });

    it("reverts EvaluatorStakingNoUnstake without a request, NotAuthorized for a stranger", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      await expect(f.court.connect(signer).claimUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNoUnstake")
        .withArgs(id);
      await expect(f.court.connect(f.stranger).claimUnstake(id))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(id, f.stranger.address);
    });
  });

  describe("claimRewards", function () {
    it("reverts EvaluatorStakingNothingToClaim", async function () {
      const f = await loadFixture(nativeCourt);
      const { signer, id } = ev(f, 0);
      const usdt = await f.usdt.getAddress();
      await expect(f.court.connect(signer).claimRewards(id, usdt))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNothingToClaim")
        .withArgs(id, usdt);
      await expect(f.court.connect(f.stranger).claimRewards(0n, NATIVE))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNothingToClaim")
        .withArgs(0n, NATIVE);
    });

    it("reverts EvaluatorStakingNotAuthorized for a stranger claiming an evaluator's rewards", async function () {
      const f = await loadFixture(nativeCourt);
      const { id } = ev(f, 0);
      await expect(f.court.connect(f.stranger).claimRewards(id, NATIVE))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(id, f.stranger.address);
    });

    it("pays a coherent juror's fee share and stake share to its wallet, once", async function () {
      const f = await loadFixture(seated);
      const [a, b, c] = f.jurors;
      await vote(f, f.caseId, f.jurors, [Choice.P75, Choice.P75, Choice.P50]);
      await revealAll(f, f.caseId, f.jurors, [Choice.P75, Choice.P75, Choice.P50]);
      await f.court.execute(f.caseId, 0n, 6n);
      const usdt = await f.usdt.getAddress();
      // Equal stakes: the fee and c's 1 OKB slash are halved.
      expect(await f.court.rewardsOf(a, usdt)).to.equal(CASE_FEE / 2n);
      expect(await f.court.rewardsOf(b, NATIVE)).to.equal(OKB("0.5"));
      expect(await f.court.rewardsOf(c, usdt)).to.equal(0n);
      const signer = jurorSigner(f, a);
      await setWallet(f, signer, a, f.dave);
      let tx = f.court.connect(signer).claimRewards(a, usdt);
      await expect(tx)
        .to.emit(f.court, "RewardsClaimed")
        .withArgs(a, usdt, f.dave.address, CASE_FEE / 2n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.dave, f.court], [CASE_FEE / 2n, -(CASE_FEE / 2n)]);
      tx = f.court.connect(signer).claimRewards(a, NATIVE);
      await expect(tx).to.emit(f.court, "RewardsClaimed").withArgs(a, NATIVE, f.dave.address, OKB("0.5"));
      await expect(tx).to.changeEtherBalances([f.dave, f.court], [OKB("0.5"), -OKB("0.5")]);
      expect(await f.court.rewardsOf(a, usdt)).to.equal(0n);
      await expect(f.court.connect(signer).claimRewards(a, usdt))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNothingToClaim")
        .withArgs(a, usdt);
      await expectSolvent(f);
    });

    it("agent 0 (the protocol's share of an abandoned round) goes to the treasury, sent by anyone", async function () {
      const f = await loadFixture(seated);
      await time.increase(COURT_PARAMS.commitPeriod + 1);
      await f.court.advance(f.caseId);
      await f.court.execute(f.caseId, 0n, 6n);
      // Three absent jurors, each 20% of the 10 OKB lock.
      const pot = 3n * ((MIN_STAKE * 2_000n) / 10_000n);
      expect(await f.court.rewardsOf(0n, NATIVE)).to.equal(pot);
      const tx = f.court.connect(f.stranger).claimRewards(0n, NATIVE);
      await expect(tx).to.emit(f.court, "RewardsClaimed").withArgs(0n, NATIVE, f.treasury.address, pot);
      await expect(tx).to.changeEtherBalances([f.treasury, f.stranger, f.court], [pot, 0n, -pot]);
      expect(await f.court.rewardsOf(0n, NATIVE)).to.equal(0n);
      await expectSolvent(f);
    });
  });

  // ------------------------------------------------------------------ arbitrator

  describe("createDispute", function () {
    it("only ARBITRABLE_ROLE (AccessControlUnauthorizedAccount)", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.connect(f.stranger).createDispute(5n, extraData(f, 0n, await f.usdt.getAddress())))
        .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, ARBITRABLE_ROLE);
    });

    it("reverts EvaluatorStakingBadChoices for anything but 5 choices", async function () {
      const f = await loadFixture(nativeCourt);
      await f.court.grantRole(ARBITRABLE_ROLE, f.operator.address);
      for (const choices of [0n, 4n, 6n]) {
        await expect(f.court.connect(f.operator).createDispute(choices, extraData(f, 0n, await f.usdt.getAddress())))
          .to.be.revertedWithCustomError(f.court, "EvaluatorStakingBadChoices")
          .withArgs(choices);
      }
    });

    it("opens a case keeping the fee that actually arrived", async function () {
      const f = await loadFixture(nativeCourt);
      const usdt = await f.usdt.getAddress();
      await f.court.grantRole(ARBITRABLE_ROLE, f.operator.address);
      await f.usdt.connect(f.operator).transfer(await f.court.getAddress(), usd(3));
      const tx = f.court.connect(f.operator).createDispute(5n, extraData(f, usd(5), usdt, f.aliceId, f.carolId));
      await expect(tx).to.emit(f.court, "DisputeCreation").withArgs(1n, f.operator.address);
      await expect(tx)
        .to.emit(f.court, "CaseCreated")
        .withArgs(1n, f.operator.address, usdt, usd(3), f.aliceId, f.carolId);
      const drawDeadline = BigInt((await (await tx).getBlock())!.timestamp) + (await f.court.DRAW_TIMEOUT());
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(1n, 0n, CaseStatus.None, CaseStatus.Drawing, drawDeadline);
      const c = await f.court.getCase(1n);
      expect(c.fee).to.equal(usd(3));
      expect(c.clientOwner).to.equal(f.alice.address);
      expect(c.providerOwner).to.equal(f.carol.address);
      expect(await f.court.held(usdt)).to.equal(usd(3));
      expect((await f.court.getRound(1n, 0n)).fee).to.equal(usd(3));
      // A second case with the fee fully transferred keeps the stated fee, not the surplus.
      await f.usdt.connect(f.operator).transfer(await f.court.getAddress(), usd(6));
      await expect(f.court.connect(f.operator).createDispute(5n, extraData(f, usd(5), usdt)))
        .to.emit(f.court, "CaseCreated")
        .withArgs(2n, f.operator.address, usdt, usd(5), f.aliceId, f.bobId);
      expect(await f.court.held(usdt)).to.equal(usd(8));
      const [, , , , pendingCases] = await f.court.drawState();
      expect(pendingCases).to.equal(2n);
    });

    it("TaskEscrow's dispute opens a case with its fee and the parties", async function () {
      const f = await loadFixture(withCase);
      const c = await f.court.getCase(f.caseId);
      expect(f.caseId).to.equal(1n);
      expect(c.arbitrable).to.equal(await f.escrow.getAddress());
      expect(c.status).to.equal(CaseStatus.Drawing);
      const opened = (await f.court.queryFilter(f.court.filters.CaseCreated(f.caseId)))[0];
      const drawDeadline = BigInt((await opened.getBlock()).timestamp) + 7n * 86_400n;
      expect(await f.court.DRAW_TIMEOUT()).to.equal(7n * 86_400n);
      expect([c.round, c.appeals, c.deadline, c.markEpoch]).to.deep.equal([0n, 0n, drawDeadline, 0n]);
      expect(c.token).to.equal(await f.usdt.getAddress());
      expect(c.fee).to.equal(CASE_FEE);
      expect([c.clientId, c.providerId]).to.deep.equal([f.aliceId, f.bobId]);
      expect([c.clientOwner, c.providerOwner]).to.deep.equal([f.alice.address, f.bob.address]);
      expect(c.params).to.deep.equal(Object.values(COURT_PARAMS));
      expect(await f.usdt.balanceOf(await f.court.getAddress())).to.equal(CASE_FEE);
      await expectSolvent(f);
    });
  });

  describe("arbitrationCost", function () {
    it("returns the fee of the extraData", async function () {
      const f = await loadFixture(nativeCourt);
      expect(await f.court.arbitrationCost(extraData(f, usd(12), await f.usdt.getAddress()))).to.equal(usd(12));
      expect(await f.court.arbitrationCost(extraData(f, 0n, await f.usdt.getAddress()))).to.equal(0n);
    });
  });

  // ------------------------------------------------------------------ draw epochs

  describe("requestRandomness", function () {
    it("starts the Generating phase for the waiting cases", async function () {
      const f = await loadFixture(withCase);
      await waitForStakingTime(f.court);
      const t = await pin();
      const tx = f.court.connect(f.stranger).requestRandomness();
      await expect(tx).to.emit(f.court, "PhaseChanged").withArgs(Phase.Staking, Phase.Generating, 1n);
      await expect(tx).to.emit(f.court, "RandomnessRequested").withArgs(1n, 1n, 1n);
      await expect(tx).to.emit(f.vrfSource, "RandomnessRequested").withArgs(1n);
      const [phase, epoch, since, requestId, pendingCases, casesThisEpoch, fallbackBlock] = await f.court.drawState();
      expect([phase, epoch, since, requestId, pendingCases, casesThisEpoch, fallbackBlock]).to.deep.equal([
        BigInt(Phase.Generating),
        1n,
        t,
        1n,
        0n,
        1n,
        0n,
      ]);
    });

    it("reverts EvaluatorStakingTooEarly before minStakingTime in the Staking phase", async function () {
      const f = await loadFixture(withCase);
      await f.court.setTiming(timing({ minStakingTime: 3_600 }));
      const [, , since] = await f.court.drawState();
      const ready = since + 3_600n;
      await time.setNextBlockTimestamp(ready - 1n);
      await expect(f.court.requestRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(ready);
      await time.setNextBlockTimestamp(ready);
      await expect(f.court.requestRandomness()).to.emit(f.court, "RandomnessRequested");
    });

    it("reverts EvaluatorStakingNoCaseWaiting without a case", async function () {
      const f = await loadFixture(nativeCourt);
      await waitForStakingTime(f.court);
      await expect(f.court.requestRandomness()).to.be.revertedWithCustomError(f.court, "EvaluatorStakingNoCaseWaiting");
    });

    it("reverts EvaluatorStakingEmptyPool when nobody is staked", async function () {
      const f = await loadFixture(unstakedCourt);
      await openCase(f);
      await waitForStakingTime(f.court);
      await expect(f.court.requestRandomness()).to.be.revertedWithCustomError(f.court, "EvaluatorStakingEmptyPool");
    });

    it("reverts EvaluatorStakingWrongPhase for a second request", async function () {
      const f = await loadFixture(generating);
      await expect(f.court.requestRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
    });
  });

  describe("receiveRandomness", function () {
    it("the pending request's word starts the Drawing phase", async function () {
      const f = await loadFixture(generating);
      const t = await pin();
      const tx = f.coordinator.fulfillRandomWordsWithOverride(f.requestId, await f.vrfSource.getAddress(), [99n]);
      await expect(tx).to.emit(f.court, "RandomnessReceived").withArgs(1n, f.requestId, 99n);
      await expect(tx).to.emit(f.court, "PhaseChanged").withArgs(Phase.Generating, Phase.Drawing, 1n);
      const [phase, epoch, since, requestId] = await f.court.drawState();
      expect([phase, epoch, since, requestId]).to.deep.equal([BigInt(Phase.Drawing), 1n, t, 0n]);
    });

    it("reverts EvaluatorStakingNotRandomnessSource for anyone but the source", async function () {
      const f = await loadFixture(generating);
      await expect(f.court.connect(f.stranger).receiveRandomness(f.requestId, 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotRandomnessSource")
        .withArgs(f.stranger.address);
    });

    it("ignores (RandomnessIgnored) a wrong id, id 0, and any answer outside Generating", async function () {
      const f = await loadFixture(generating);
      const source = await ethers.getImpersonatedSigner(await f.vrfSource.getAddress());
      await setBalance(source.address, OKB(1));
      await expect(f.court.connect(source).receiveRandomness(f.requestId + 1n, 5n))
        .to.emit(f.court, "RandomnessIgnored")
        .withArgs(f.requestId + 1n);
      await expect(f.court.connect(source).receiveRandomness(0n, 5n))
        .to.emit(f.court, "RandomnessIgnored")
        .withArgs(0n);
      expect((await f.court.drawState())[0]).to.equal(BigInt(Phase.Generating));
      await f.court.connect(source).receiveRandomness(f.requestId, 5n);
      await expect(f.court.connect(source).receiveRandomness(f.requestId, 6n))
        .to.emit(f.court, "RandomnessIgnored")
        .withArgs(f.requestId);
      expect((await f.court.drawState())[0]).to.equal(BigInt(Phase.Drawing));
    });
  });

  describe("fallbackRandomness", function () {
    it("reverts EvaluatorStakingWrongPhase outside Generating", async function () {
      const f = await loadFixture(withCase);
      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Staking);
    });

    it("reverts EvaluatorStakingTooEarly before randomnessTimeout", async function () {
      const f = await loadFixture(generating);
      const [, , since] = await f.court.drawState();
      const ready = since + BigInt(COURT_TIMING.randomnessTimeout);
      await time.setNextBlockTimestamp(ready - 1n);
      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(ready);
    });

    it("schedules a block, refuses it until it is past, then uses its hash and starts Drawing", async function () {
      const f = await loadFixture(generating);
      await time.increase(COURT_TIMING.randomnessTimeout);
      const scheduledAt = BigInt(await ethers.provider.getBlockNumber()) + 1n;
      const target = scheduledAt + FALLBACK_BLOCKS;
      await expect(f.court.connect(f.stranger).fallbackRandomness())
        .to.emit(f.court, "FallbackScheduled")
        .withArgs(1n, target);
      let [phase, , , requestId, , , fallbackBlock] = await f.court.drawState();
      expect([phase, requestId, fallbackBlock]).to.deep.equal([BigInt(Phase.Generating), 0n, target]);

      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(target + 1n);
      // The call mined in the target block itself is still too early.
      await mine(target - BigInt(await ethers.provider.getBlockNumber()) - 1n);
      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(target + 1n);
      expect(BigInt(await ethers.provider.getBlockNumber())).to.equal(target);

      // A late VRF answer is ignored once the fallback started.
      await expect(f.coordinator.fulfillRandomWords(f.requestId, await f.vrfSource.getAddress()))
        .to.emit(f.court, "RandomnessIgnored")
        .withArgs(f.requestId);

      const hash = (await ethers.provider.getBlock(Number(target)))!.hash!;
      const word = BigInt(ethers.keccak256(coder.encode(["bytes32", "uint256"], [hash, 1n])));
      const tx = f.court.fallbackRandomness();
      await expect(tx).to.emit(f.court, "RandomnessReceived").withArgs(1n, 0n, word);
      await expect(tx).to.emit(f.court, "PhaseChanged").withArgs(Phase.Generating, Phase.Drawing, 1n);
      [phase, , , requestId, , , fallbackBlock] = await f.court.drawState();
      expect([phase, requestId, fallbackBlock]).to.deep.equal([BigInt(Phase.Drawing), 0n, 0n]);
      expect(await drawJury(f, f.caseId)).to.have.length(3);
    });

    it("uses the target's hash up to 256 blocks later, then schedules again", async function () {
      const f = await loadFixture(generating);
      await time.increase(COURT_TIMING.randomnessTimeout);
      await f.court.fallbackRandomness();
      const [, , , , , , first] = await f.court.drawState();
      // The next transaction is mined exactly 256 blocks after the target: the hash is still there.
      await mine(first + 256n - BigInt(await ethers.provider.getBlockNumber()) - 1n);
      const snapshot = await takeSnapshot();
      const hash = (await ethers.provider.getBlock(Number(first)))!.hash!;
      const word = BigInt(ethers.keccak256(coder.encode(["bytes32", "uint256"], [hash, 1n])));
      await expect(f.court.fallbackRandomness()).to.emit(f.court, "RandomnessReceived").withArgs(1n, 0n, word);
      await snapshot.restore();
      // One block later it is not: a new block is scheduled and the phase stays Generating.
      await mine(1);
      const next = BigInt(await ethers.provider.getBlockNumber()) + 1n + FALLBACK_BLOCKS;
      const tx = f.court.fallbackRandomness();
      await expect(tx).to.emit(f.court, "FallbackScheduled").withArgs(1n, next);
      await expect(tx).to.not.emit(f.court, "RandomnessReceived");
      const [phase, , , , , , fallbackBlock] = await f.court.drawState();
      expect([phase, fallbackBlock]).to.deep.equal([BigInt(Phase.Generating), next]);
    });
  });

  describe("passPhase", function () {
    it("reverts EvaluatorStakingWrongPhase outside Drawing", async function () {
      const f = await loadFixture(generating);
      await expect(f.court.passPhase())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
    });

    it("returns to Staking once every case is seated", async function () {
      const f = await loadFixture(drawing);
      await drawJury(f, f.caseId);
      const t = await pin();
      await expect(f.court.connect(f.stranger).passPhase())
        .to.emit(f.court, "PhaseChanged")
        .withArgs(Phase.Drawing, Phase.Staking, 1n);
      const [phase, epoch, since, , pendingCases, casesThisEpoch] = await f.court.drawState();
      expect([phase, epoch, since, pendingCases, casesThisEpoch]).to.deep.equal([BigInt(Phase.Staking), 1n, t, 0n, 0n]);
    });

    it("reverts EvaluatorStakingTooEarly while a case is unseated, then after maxDrawingTime the case waits for the next epoch", async function () {
      const f = await loadFixture(drawing);
      const [, , since] = await f.court.drawState();
      const ready = since + BigInt(COURT_TIMING.maxDrawingTime);
      await f.court.draw(f.caseId, 1n);
      await time.setNextBlockTimestamp(ready - 1n);
      await expect(f.court.passPhase())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(ready);
      await time.setNextBlockTimestamp(ready);
      await expect(f.court.passPhase()).to.emit(f.court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 1n);
      const [, , , , pendingCases, casesThisEpoch] = await f.court.drawState();
      expect([pendingCases, casesThisEpoch]).to.deep.equal([1n, 0n]);
      expect((await f.court.getCase(f.caseId)).status).to.equal(CaseStatus.Drawing);
      expect((await f.court.getRound(f.caseId, 0n)).seated).to.equal(1n);
      // The next epoch seats the rest, once the Staking phase lasted minStakingTime.
      await expect(f.court.requestRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(ready + BigInt(COURT_TIMING.minStakingTime));
      await time.setNextBlockTimestamp(ready + BigInt(COURT_TIMING.minStakingTime));
      await expect(f.court.requestRandomness()).to.emit(f.court, "RandomnessRequested").withArgs(2n, 2n, 1n);
      await f.coordinator.fulfillRandomWords(2n, await f.vrfSource.getAddress());
      await f.court.draw(f.caseId, 100n);
      const r = await f.court.getRound(f.caseId, 0n);
      expect(r.seated).to.equal(3n);
      expect(new Set(r.jurors.map((j) => j.toString())).size).to.equal(3);
      expect((await f.court.getCase(f.caseId)).status).to.equal(CaseStatus.Commit);
    });
  });

  describe("draw", function () {
    it("seats the jurors the word selects, stake-weighted, and opens the commit period", async function () {
      const f = await loadFixture(drawing);
      // Five equal leaves of W100 in allocation order: leaf k is evaluator #5 + k. All five are
      // eligible (none is a party nor owned by one); a candidate already seated is skipped.
      const leaves = f.evaluators.map((e) => ({ id: e.id, weight: STAKE / WEIGHT_UNIT }));
      const expected = replicateDraw(f.word, f.caseId, 0n, leaves, 3, (id, seats) => !seats.includes(id));
      expect(expected).to.have.length(3);
      const first = f.court.connect(f.stranger).draw(f.caseId, 1n);
      await expect(first).to.emit(f.court, "JurorDrawn").withArgs(f.caseId, 0n, expected[0], 0n, STAKE);
      await expect(first).to.not.emit(f.court, "CaseStatusChanged");
      expect((await f.court.getRound(f.caseId, 0n)).seated).to.equal(1n);
      expect(await f.court.draw.staticCall(f.caseId, 0n)).to.equal(1n);

      const t = await pin();
      const rest = f.court.draw(f.caseId, 100n);
      await expect(rest).to.emit(f.court, "JurorDrawn").withArgs(f.caseId, 0n, expected[1], 1n, STAKE);
      await expect(rest).to.emit(f.court, "JurorDrawn").withArgs(f.caseId, 0n, expected[2], 2n, STAKE);
      await expect(rest)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Drawing, CaseStatus.Commit, t + BigInt(COURT_PARAMS.commitPeriod));
      const r = await f.court.getRound(f.caseId, 0n);
      expect(r.jurors).to.deep.equal(expected);
      expect([r.size, r.seated]).to.deep.equal([3n, 3n]);
      for (const j of expected) {
        expect((await f.court.getEvaluator(j)).locked).to.equal(MIN_STAKE);
        const v = await f.court.getVote(f.caseId, 0n, j);
        expect([v.commitHash, v.stake, v.choice, v.revealed]).to.deep.equal([ethers.ZeroHash, STAKE, 0n, false]);
      }
      expect((await f.court.drawState())[5]).to.equal(0n);
    });

    it("seats 7 of 12 leaves of unequal weights exactly as the word selects, skipping the party owner's agent", async function () {
      const f = await loadFixture(elevenEvaluators);
      const leaves = [
        ...f.evaluators.map((e, i) => ({ id: e.id, weight: ELEVEN_STAKES[i] / WEIGHT_UNIT })),
        { id: f.aliceEvaluator, weight: STAKE / WEIGHT_UNIT },
      ];
      for (let k = 0; k < leaves.length; k++) {
        expect((await f.court.getEvaluator(leaves[k].id)).leaf).to.equal(BigInt(k + 1));
        expect(await f.court.weightOf(leaves[k].id)).to.equal(leaves[k].weight);
      }
      expect(leaves[4].weight).to.equal(1234n);
      expect(await f.court.totalWeight()).to.equal(leaves.reduce((s, l) => s + l.weight, 0n));
      const word = 0xc0ffeen;
      await fulfilRandomness(f, word);
      let aliceDrawn = 0;
      const expected = replicateDraw(word, f.caseId, 0n, leaves, 7, (id, seats) => {
        if (id === f.aliceEvaluator) aliceDrawn++;
        return id !== f.aliceEvaluator && !seats.includes(id);
      });
      expect(expected).to.have.length(7);
      // The word does draw alice's agent, which is skipped.
      expect(aliceDrawn).to.be.greaterThan(0);
      const tx = f.court.draw(f.caseId, 1_000n);
      for (let i = 0; i < expected.length; i++) {
        const stake = ELEVEN_STAKES[f.evaluators.findIndex((e) => e.id === expected[i])];
        await expect(tx).to.emit(f.court, "JurorDrawn").withArgs(f.caseId, 0n, expected[i], BigInt(i), stake);
      }
      const r = await f.court.getRound(f.caseId, 0n);
      expect(r.jurors).to.deep.equal(expected);
      expect([r.size, r.seated]).to.deep.equal([7n, 7n]);
      expect((await f.court.getCase(f.caseId)).status).to.equal(CaseStatus.Commit);
      expect((await f.court.getEvaluator(f.aliceEvaluator)).locked).to.equal(0n);
    });

    it("reverts EvaluatorStakingWrongPhase outside Drawing", async function () {
      const f = await loadFixture(withCase);
      await expect(f.court.draw(f.caseId, 10n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Staking);
    });

    it("reverts EvaluatorStakingUnknownCase and EvaluatorStakingWrongStatus (already seated)", async function () {
      const f = await loadFixture(drawing);
      await expect(f.court.draw(99n, 10n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(99n);
      await drawJury(f, f.caseId);
      await expect(f.court.draw(f.caseId, 10n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongStatus")
        .withArgs(f.caseId, CaseStatus.Commit);
    });

    it("reverts EvaluatorStakingNotDrawable for a case created after the request", async function () {
      const f = await loadFixture(generating);
      const second = await openCase(f);
      expect((await f.court.getCase(second.caseId)).markEpoch).to.equal(1n);
      await f.coordinator.fulfillRandomWords(f.requestId, await f.vrfSource.getAddress());
      await expect(f.court.draw(second.caseId, 10n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotDrawable")
        .withArgs(second.caseId, 1n, 1n);
      const [, , , , pendingCases, casesThisEpoch] = await f.court.drawState();
      expect([pendingCases, casesThisEpoch]).to.deep.equal([1n, 1n]);
      // Seating the first case lets the phase pass; the second is drawn with the next word.
      await drawJury(f, f.caseId);
      await f.court.passPhase();
      await fulfilRandomness(f);
      expect(await drawJury(f, second.caseId)).to.have.length(3);
    });

    it("never seats an agent of a party's owner (iterations are spent, nobody seated)", async function () {
      const f = await loadFixture(unstakedCourt);
      const aliceEvaluator = await register(f, f.alice);
      await f.court.connect(f.alice).stake(aliceEvaluator, STAKE, { value: STAKE });
      const { caseId } = await openCase(f);
      await fulfilRandomness(f);
      await expect(f.court.draw(caseId, 20n)).to.not.emit(f.court, "JurorDrawn");
      expect(await f.court.draw.staticCall(caseId, 20n)).to.equal(0n);
      const r = await f.court.getRound(caseId, 0n);
      expect([r.seated, r.jurors.length]).to.deep.equal([0n, 0]);
      expect((await f.court.getEvaluator(aliceEvaluator)).locked).to.equal(0n);
    });

    it("never seats an evaluator twice in a round, nor one without free stake for the lock", async function () {
      // Two evaluators only: one with 100 OKB, one with exactly the lock; the 3-seat jury cannot fill.
      const f = await loadFixture(unstakedCourt);
      await stakeFor(f.court, f, ev(f, 0).signer, ev(f, 0).id, STAKE, false);
      await stakeFor(f.court, f, ev(f, 1).signer, ev(f, 1).id, MIN_STAKE, false);
      const { caseId } = await openCase(f);
      await fulfilRandomness(f);
      const seatedNow = await f.court.draw.staticCall(caseId, 60n);
      await f.court.draw(caseId, 60n);
      const r = await f.court.getRound(caseId, 0n);
      expect(seatedNow).to.equal(2n);
      expect([...r.jurors].sort()).to.deep.equal([ev(f, 0).id, ev(f, 1).id]);
      expect((await f.court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);
    });
  });

  // ------------------------------------------------------------------ admin

  describe("setParams", function () {
    it("sets the parameters (ParamsSet); existing cases keep their snapshot", async function () {
      const f = await loadFixture(withCase);
      const p = params({ minStake: OKB(20), jurySize: 5, maxRounds: 4, appealFeeBps: 50_000 });
      await expect(f.court.setParams(p)).to.emit(f.court, "ParamsSet").withArgs(Object.values(p));
      expect(await f.court.params()).to.deep.equal(Object.values(p));
      expect((await f.court.getCase(f.caseId)).params).to.deep.equal(Object.values(COURT_PARAMS));
      const second = await openCase(f);
      expect((await f.court.getCase(second.caseId)).params).to.deep.equal(Object.values(p));
      expect((await f.court.getRound(second.caseId, 0n)).size).to.equal(5n);
    });

    it("accepts every bound", async function () {
      const f = await loadFixture(nativeCourt);
      const low = params({
        minStake: WEIGHT_UNIT,
        commitPeriod: 3_600,
        revealPeriod: 3_600,
        appealPeriod: 3_600,
        jurorCooldown: 0,
        slashMinorityBps: 0,
        slashTimeoutBps: 0,
        appealFeeBps: 5_000,
        jurySize: 1,
        maxRounds: 1,
      });
      await expect(f.court.setParams(low)).to.emit(f.court, "ParamsSet");
      const high = params({
        minStake: MAX_STAKE,
        commitPeriod: 30 * 86_400,
        revealPeriod: 30 * 86_400,
        appealPeriod: 30 * 86_400,
        jurorCooldown: 90 * 86_400,
        slashMinorityBps: 5_000,
        slashTimeoutBps: 5_000,
        appealFeeBps: 50_000,
        jurySize: 7,
        maxRounds: 4,
      });
      await expect(f.court.setParams(high)).to.emit(f.court, "ParamsSet");
      expect(await f.court.params()).to.deep.equal(Object.values(high));
    });

    const bad: [string, Partial<typeof COURT_PARAMS>][] = [
      ["minStake below WEIGHT_UNIT", { minStake: WEIGHT_UNIT - 1n }],
      ["minStake above MAX_STAKE", { minStake: MAX_STAKE + 1n }],
      ["jurySize 0", { jurySize: 0 }],
      ["an even jurySize", { jurySize: 4 }],
      ["jurySize 9", { jurySize: 9 }],
      ["maxRounds 0", { maxRounds: 0 }],
      ["maxRounds 5", { maxRounds: 5 }],
      ["commitPeriod below 1 hour", { commitPeriod: 3_599 }],
      ["commitPeriod above 30 days", { commitPeriod: 30 * 86_400 + 1 }],
      ["revealPeriod below 1 hour", { revealPeriod: 3_599 }],
      ["revealPeriod above 30 days", { revealPeriod: 30 * 86_400 + 1 }],
      ["appealPeriod below 1 hour", { appealPeriod: 3_599 }],
      ["appealPeriod above 30 days", { appealPeriod: 30 * 86_400 + 1 }],
      ["jurorCooldown above 90 days", { jurorCooldown: 90 * 86_400 + 1 }],
      ["slashMinorityBps above slashTimeoutBps", { slashMinorityBps: 2_001 }],
      ["slashTimeoutBps above 50%", { slashMinorityBps: 1_000, slashTimeoutBps: 5_001 }],
      ["appealFeeBps below 50%", { appealFeeBps: 4_999 }],
      ["appealFeeBps above 500%", { appealFeeBps: 50_001 }],
    ];
    for (const [name, over] of bad) {
      it(`reverts EvaluatorStakingBadParams with ${name}`, async function () {
        const f = await loadFixture(nativeCourt);
        await expect(f.court.setParams(params(over))).to.be.revertedWithCustomError(
          f.court,
          "EvaluatorStakingBadParams",
        );
      });
    }

    it("is PARAMETER_ROLE only", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.connect(f.stranger).setParams(COURT_PARAMS))
        .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, PARAMETER_ROLE);
    });
  });

  describe("setTiming", function () {
    it("sets the timings (TimingSet), bounds included", async function () {
      const f = await loadFixture(nativeCourt);
      const low = { unstakeDelay: 3_600, minStakingTime: 3_600, maxDrawingTime: 3_600, randomnessTimeout: 3_600 };
      await expect(f.court.setTiming(low)).to.emit(f.court, "TimingSet").withArgs(Object.values(low));
      expect(await f.court.timing()).to.deep.equal(Object.values(low));
      const high = {
        unstakeDelay: 30 * 86_400,
        minStakingTime: 7 * 86_400,
        maxDrawingTime: 7 * 86_400,
        randomnessTimeout: 30 * 86_400,
      };
      await expect(f.court.setTiming(high)).to.emit(f.court, "TimingSet").withArgs(Object.values(high));
      expect(await f.court.timing()).to.deep.equal(Object.values(high));
    });

    const bad: [string, Partial<typeof COURT_TIMING>][] = [
      ["unstakeDelay below 1 hour", { unstakeDelay: 3_599 }],
      ["unstakeDelay above 30 days", { unstakeDelay: 30 * 86_400 + 1 }],
      ["minStakingTime below 1 hour (0 lets passPhase and requestRandomness share a block)", { minStakingTime: 3_599 }],
      ["minStakingTime of 0", { minStakingTime: 0 }],
      ["minStakingTime above 7 days", { minStakingTime: 7 * 86_400 + 1 }],
      ["maxDrawingTime below 1 hour", { maxDrawingTime: 3_599 }],
      ["maxDrawingTime above 7 days", { maxDrawingTime: 7 * 86_400 + 1 }],
      ["randomnessTimeout below 1 hour", { randomnessTimeout: 3_599 }],
      ["randomnessTimeout above 30 days", { randomnessTimeout: 30 * 86_400 + 1 }],
    ];
    for (const [name, over] of bad) {
      it(`reverts EvaluatorStakingBadParams with ${name}`, async function () {
        const f = await loadFixture(nativeCourt);
        await expect(f.court.setTiming(timing(over))).to.be.revertedWithCustomError(
          f.court,
          "EvaluatorStakingBadParams",
        );
      });
    }

    it("is PARAMETER_ROLE only", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.connect(f.stranger).setTiming(COURT_TIMING))
        .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, PARAMETER_ROLE);
    });
  });

  describe("setRandomnessSource", function () {
    it("sets the source (RandomnessSourceSet)", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.setRandomnessSource(f.operator.address))
        .to.emit(f.court, "RandomnessSourceSet")
        .withArgs(f.operator.address);
      expect((await f.court.contracts())[2]).to.equal(f.operator.address);
      // The old source is refused; the new one is heard (an answer out of Generating is ignored).
      const old = await ethers.getImpersonatedSigner(await f.vrfSource.getAddress());
      await setBalance(old.address, OKB(1));
      await expect(f.court.connect(old).receiveRandomness(1n, 5n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotRandomnessSource")
        .withArgs(old.address);
      await expect(f.court.connect(f.operator).receiveRandomness(1n, 5n))
        .to.emit(f.court, "RandomnessIgnored")
        .withArgs(1n);
    });

    it("reverts WrongPhase outside Staking, ProtocolZeroAddress for zero, AccessControl for non-admins", async function () {
      const f = await loadFixture(generating);
      await expect(f.court.setRandomnessSource(f.operator.address))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
      await expect(f.court.setRandomnessSource(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.court,
        "ProtocolZeroAddress",
      );
      await expect(f.court.connect(f.stranger).setRandomnessSource(f.operator.address))
        .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("setTreasury", function () {
    it("sets the treasury (TreasurySet); admin only; not zero", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.setTreasury(f.dave.address)).to.emit(f.court, "TreasurySet").withArgs(f.dave.address);
      expect((await f.court.contracts())[3]).to.equal(f.dave.address);
      await expect(f.court.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.court,
        "ProtocolZeroAddress",
      );
      await expect(f.court.connect(f.stranger).setTreasury(f.dave.address))
        .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  // ------------------------------------------------------------------ views

  describe("views", function () {
    it("getCase reverts EvaluatorStakingUnknownCase for an unknown case; getRound/getVote are empty", async function () {
      const f = await loadFixture(nativeCourt);
      await expect(f.court.getCase(1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(1n);
      const r = await f.court.getRound(1n, 0n);
      expect([r.size, r.seated, r.fee, r.jurors.length]).to.deep.equal([0n, 0n, 0n, 0]);
      const v = await f.court.getVote(1n, 0n, 5n);
      expect([v.commitHash, v.stake, v.choice, v.revealed]).to.deep.equal([ethers.ZeroHash, 0n, 0n, false]);
      await expect(f.court.appealCost(1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(1n);
    });

    it("getRound of a new case: size, fee, no jurors, zero counts", async function () {
      const f = await loadFixture(withCase);
      const r = await f.court.getRound(f.caseId, 0n);
      expect([r.size, r.seated, r.committed, r.revealed, r.ruled, r.abandoned, r.ruling, r.cursor]).to.deep.equal([
        3n,
        0n,
        0n,
        0n,
        false,
        false,
        0n,
        0n,
      ]);
      expect([r.fee, r.slashPot]).to.deep.equal([CASE_FEE, 0n]);
      expect(r.counts).to.deep.equal([0n, 0n, 0n, 0n, 0n]);
      expect(r.stakeByChoice).to.deep.equal([0n, 0n, 0n, 0n, 0n]);
      expect(r.jurors).to.deep.equal([]);
    });

    it("appealCost = fee x (2n + 1) x appealFeeBps / (jurySize x 10,000)", async function () {
      const f = await loadFixture(withCase);
      expect(await f.court.appealCost(f.caseId)).to.equal((CASE_FEE * 7n * 10_000n) / (3n * 10_000n));
      expect(await f.court.appealCost(f.caseId)).to.equal(11_666_666n);
    });

    it("commitmentOf is keccak256(abi.encode(caseId, round, jurorId, choice, salt))", async function () {
      const f = await loadFixture(nativeCourt);
      const salt = ethers.id("salt");
      const expected = ethers.keccak256(
        coder.encode(["uint256", "uint256", "uint256", "uint256", "bytes32"], [3n, 1n, 7n, 4n, salt]),
      );
      expect(await f.court.commitmentOf(3n, 1n, 7n, 4n, salt)).to.equal(expected);
      expect(await f.court.commitmentOf(3n, 1n, 7n, 3n, salt)).to.not.equal(expected);
    });

    it("held tracks the stake asset and the case tokens", async function () {
      const f = await loadFixture(withCase);
      expect(await f.court.held(NATIVE)).to.equal(5n * STAKE);
      expect(await f.court.held(await f.usdt.getAddress())).to.equal(CASE_FEE);
      expect(await f.court.held(await f.usdg.getAddress())).to.equal(0n);
      await expectSolvent(f);
    });

    it("constants", async function () {
      const f = await loadFixture(nativeCourt);
      expect(await f.court.WEIGHT_UNIT()).to.equal(WEIGHT_UNIT);
      expect(await f.court.MAX_STAKE()).to.equal(MAX_STAKE);
      expect(await f.court.FALLBACK_BLOCKS()).to.equal(FALLBACK_BLOCKS);
      expect(await f.court.CHOICES()).to.equal(5n);
      expect(await f.court.ARBITRABLE_ROLE()).to.equal(ARBITRABLE_ROLE);
    });
  });

  describe("phase guards", function () {
    it("execute reverts EvaluatorStakingWrongPhase outside Staking", async function () {
      const f = await loadFixture(drawing);
      await expect(f.court.execute(f.caseId, 0n, 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Drawing);
    });
  });
});
