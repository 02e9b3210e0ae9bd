import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, mine, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  deployCourt,
  openCase,
  drawJury,
  drawDeadline,
  fulfilRandomness,
  jurorSigner,
  stakeFor,
  vote,
  revealAll,
  CaseStatus,
  Choice,
  DRAW_TIMEOUT,
  MIN_STAKE,
  OKB,
  Phase,
  COURT_PARAMS,
  COURT_TIMING,
  FIRST_EVALUATOR_SIGNER,
  type CourtFixture,
} from "../fixtures/court";
import { PROTOCOL_FEE_BPS, Status } from "../fixtures/escrow";
import { usd } from "../fixtures/helpers";
import { ERC1967Proxy__factory, EvaluatorStaking__factory } from "../../typechain-types";

/**
 * Liveness of the court (review findings F1 and F2, fixed) and two documented limits (F3, F4):
 *
 * - F1: a round larger than the eligible pool (a 7-seat appeal round with 5 evaluators) used to
 *   wait for ever, freezing its jurors' locks and its fee. Now a round still short `DRAW_TIMEOUT`
 *   after it started waiting goes on with the jurors it has at its next draw of at least 64
 *   candidates (`RoundShrunk`), and one with nobody seated is abandoned and redrawn.
 * - F2: `minStakingTime` could be 0, so `passPhase` and `requestRandomness` could share a block and
 *   keep the court out of the Staking phase. It is now at least one hour (setTiming, initializer,
 *   Ignition default).
 * - F3 (known limitation 5): the parties' owners are fixed when the case is created.
 * - F4: the court's ERC-7201 struct lives in JuryLogic, so the upgrades plugin does not validate it
 *   (test/upgrade/CourtStorageLayout.test.ts checks it against a snapshot).
 */

const BPS = 10_000n;
const PRICE = usd(100);
const DEPOSIT = (PRICE * 500n) / BPS; // arbitration fee: 5% of the price, the client's deposit
const SHRINK_DRAWS = 64n;

/** Five evaluators (#5..#9, 100 OKB each): enough for a 3-seat jury, not for the 7-seat appeal. */
const fivePool = () => deployCourt({ evaluators: 5 });

/** The only evaluator is a second agent of alice, the client's owner: it can never sit on her case. */
async function ownerOnlyPool() {
  const f = await deployCourt({ evaluators: 0 });
  await f.registry.connect(f.alice).getFunction("register(string)")("ipfs://alice-evaluator");
  const aliceEvaluator = await f.registry.agentCount();
  await stakeFor(f.court, f, f.alice, aliceEvaluator, OKB(100), false);
  return { ...f, aliceEvaluator };
}

/** The part of `pot` between two cumulative stakes (JuryLogic._share). */
const share = (pot: bigint, before: bigint, after: bigint, total: bigint) =>
  (pot * after) / total - (pot * before) / total;

const latest = async () => BigInt(await time.latest());

/** A first round ruled P0 (provider gets 0%), in its appeal period. */
async function ruledP0(f: CourtFixture) {
  const { taskId, caseId } = await openCase(f, PRICE);
  await fulfilRandomness(f);
  const jurors = await drawJury(f, caseId);
  await f.court.passPhase();
  await vote(f, caseId, jurors, [Choice.P0, Choice.P0, Choice.P0]);
  await revealAll(f, caseId, jurors, [Choice.P0, Choice.P0, Choice.P0]);
  expect((await f.court.getCase(caseId)).status).to.equal(CaseStatus.Appeal);
  return { taskId, caseId, jurors };
}

/** Bob (the provider, who lost 0%) appeals into a 7-seat round; returns its cost and draw deadline. */
async function bobAppeals(f: CourtFixture, caseId: bigint) {
  await f.usdt.connect(f.bob).approve(await f.court.getAddress(), ethers.MaxUint256);
  const cost = await f.court.appealCost(caseId);
  expect(cost).to.equal((DEPOSIT * 7n * BigInt(COURT_PARAMS.appealFeeBps)) / (3n * BPS));
  const tx = await f.court.connect(f.bob).appeal(caseId, f.bobId);
  const deadline = await drawDeadline(tx);
  await expect(tx).to.emit(f.court, "Appealed").withArgs(caseId, 1n, f.bobId, f.bob.address, cost, 7n);
  await expect(tx)
    .to.emit(f.court, "CaseStatusChanged")
    .withArgs(caseId, 1n, CaseStatus.Appeal, CaseStatus.Drawing, deadline);
  expect((await f.court.getCase(caseId)).deadline).to.equal(deadline);
  return { cost, deadline };
}

/** Ends the current Drawing phase (after maxDrawingTime if a case is still unseated). */
async function endDrawing(f: CourtFixture) {
  const [, , phaseSince, , , left] = await f.court.drawState();
  if (left !== 0n) await time.increaseTo(phaseSince + BigInt(COURT_TIMING.maxDrawingTime));
  await expect(f.court.passPhase()).to.emit(f.court, "PhaseChanged");
}

async function counters(f: CourtFixture) {
  const [phase, epoch, , , pendingCases, casesThisEpoch] = await f.court.drawState();
  return { phase, epoch, pendingCases, casesThisEpoch };
}

describe("EvaluatorStaking liveness: a short round goes on after DRAW_TIMEOUT, the Staking phase lasts at least minStakingTime", function () {
  describe("F1: a round the pool cannot fill waits DRAW_TIMEOUT, then goes on with the jurors it has", function () {
    it("7-seat appeal with 5 evaluators: waits, shrinks to 5, rules; the fee, slashes and every lock are settled to the wei", async function () {
      const f = await loadFixture(fivePool);
      const { court, usdt, escrow } = f;
      const courtAddress = await court.getAddress();
      const usdtAddress = await usdt.getAddress();
      const native = ethers.ZeroAddress;
      expect(await court.DRAW_TIMEOUT()).to.equal(DRAW_TIMEOUT);
      const { taskId, caseId, jurors: jury0 } = await ruledP0(f);
      const { cost, deadline } = await bobAppeals(f, caseId);
      expect(cost).to.equal(11_666_666n);
      // Round 0 (all three coherent) settles in the Staking phase: its locks are released.
      await court.execute(caseId, 0n, 6n);
      for (const j of jury0) expect((await court.getEvaluator(j)).locked).to.equal(0n);

      // Epoch 1, before the timeout: the 5 evaluators are seated, the round waits for 2 more.
      await fulfilRandomness(f);
      const early = court.draw(caseId, 100n);
      await expect(early).not.to.emit(court, "RoundShrunk");
      let r1 = await court.getRound(caseId, 1n);
      expect([r1.size, r1.seated]).to.deep.equal([7n, 5n]);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);
      expect(await counters(f)).to.deep.include({ pendingCases: 0n, casesThisEpoch: 1n });
      await endDrawing(f);
      expect(await counters(f)).to.deep.include({ pendingCases: 1n, casesThisEpoch: 0n });

      // Epoch 2, after the timeout: a draw of SHRINK_DRAWS candidates finds nobody new and the
      // round goes on with its 5 jurors; the commit period starts; the epoch's counters are clear.
      await time.increaseTo(deadline);
      await fulfilRandomness(f);
      expect(await latest()).to.be.greaterThan(deadline);
      const shrink = await court.draw(caseId, SHRINK_DRAWS);
      const t = BigInt((await shrink.getBlock())!.timestamp);
      await expect(shrink).to.emit(court, "RoundShrunk").withArgs(caseId, 1n, 5n);
      await expect(shrink)
        .to.emit(court, "CaseStatusChanged")
        .withArgs(caseId, 1n, CaseStatus.Drawing, CaseStatus.Commit, t + BigInt(COURT_PARAMS.commitPeriod));
      await expect(shrink).not.to.emit(court, "JurorDrawn");
      r1 = await court.getRound(caseId, 1n);
      expect([r1.size, r1.seated, r1.fee]).to.deep.equal([5n, 5n, cost]);
      expect(await counters(f)).to.deep.include({ phase: BigInt(Phase.Drawing), pendingCases: 0n, casesThisEpoch: 0n });
      // Nothing is left for this epoch: the Drawing phase ends at once (no maxDrawingTime wait).
      await expect(court.passPhase()).to.emit(court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 3n);

      // Vote: three say 100%, one 0%, one never commits. The reveal period opens at the commit
      // deadline (4 of 5 committed), the fourth reveal rules P100 (lower median of 0,4,4,4).
      const jury1 = r1.jurors.map((j) => BigInt(j));
      const choices = [Choice.P100, Choice.P100, Choice.P100, Choice.P0, undefined];
      await vote(f, caseId, jury1, choices);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Commit);
      await time.increaseTo((await court.getCase(caseId)).deadline + 1n);
      await court.advance(caseId);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Reveal);
      await revealAll(f, caseId, jury1, choices);
      r1 = await court.getRound(caseId, 1n);
      expect([r1.ruled, r1.ruling, r1.committed, r1.revealed]).to.deep.equal([true, BigInt(Choice.P100), 4n, 4n]);

      // Final ruling after the appeal window: TaskEscrow pays the provider 100% (less the 1% fee)
      // and its whole deposit back; the client gets nothing.
      await time.increaseTo((await court.getCase(caseId)).deadline + 1n);
      const protocolFee = (PRICE * PROTOCOL_FEE_BPS) / BPS;
      const providerGets = PRICE - protocolFee + DEPOSIT;
      const final = court.advance(caseId);
      await expect(final)
        .to.emit(court, "FinalRuling")
        .withArgs(caseId, await escrow.getAddress(), Choice.P100);
      await expect(final).to.changeTokenBalances(
        usdt,
        [f.alice, f.bob, escrow, court],
        [0n, providerGets, -providerGets, 0n],
      );
      expect((await escrow.getTask(taskId)).status).to.equal(Status.Resolved);
      await expect(escrow.sweepFees(usdtAddress)).to.changeTokenBalances(
        usdt,
        [f.treasury, escrow],
        [protocolFee, -protocolFee],
      );

      // Round 1 settles: 10% of the lock for the 0% vote, 20% and a cooldown for the silent
      // juror; the three coherent jurors (100 OKB each at the draw) share the appeal fee and the
      // 3 OKB pot exactly.
      const minority = (MIN_STAKE * BigInt(COURT_PARAMS.slashMinorityBps)) / BPS;
      const missed = (MIN_STAKE * BigInt(COURT_PARAMS.slashTimeoutBps)) / BPS;
      const pot = minority + missed;
      expect(pot).to.equal(OKB(3));
      const execTime = (await latest()) + 10n;
      await time.setNextBlockTimestamp(execTime);
      const exec = court.execute(caseId, 1n, 10n);
      await expect(exec).to.emit(court, "JurorSlashed").withArgs(caseId, 1n, jury1[3], minority, false, 0n);
      await expect(exec)
        .to.emit(court, "JurorSlashed")
        .withArgs(caseId, 1n, jury1[4], missed, true, execTime + BigInt(COURT_PARAMS.jurorCooldown));
      const coherent = OKB(300);
      const feeShares: bigint[] = [];
      for (let i = 0; i < 3; i++) {
        const [before, after] = [OKB(100) * BigInt(i), OKB(100) * BigInt(i + 1)];
        feeShares.push(share(cost, before, after, coherent));
        await expect(exec)
          .to.emit(court, "JurorRewarded")
          .withArgs(caseId, 1n, jury1[i], feeShares[i], share(pot, before, after, coherent));
      }
      expect(feeShares).to.deep.equal([3_888_888n, 3_888_889n, 3_888_889n]);
      expect(feeShares.reduce((a, b) => a + b, 0n)).to.equal(cost); // the appeal fee, fully paid out
      expect((await court.getRound(caseId, 1n)).cursor).to.equal(10n);

      // Every lock is released; nothing is owed but rewards; stakes are free to leave.
      let rewardsUsdt = 0n;
      let rewardsNative = 0n;
      let staked = 0n;
      for (const e of f.evaluators) {
        const ev = await court.getEvaluator(e.id);
        expect(ev.locked).to.equal(0n);
        staked += ev.staked;
        rewardsUsdt += await court.rewardsOf(e.id, usdtAddress);
        rewardsNative += await court.rewardsOf(e.id, native);
      }
      expect(rewardsUsdt).to.equal(DEPOSIT + cost);
      expect(await court.held(usdtAddress)).to.equal(DEPOSIT + cost);
      expect(await usdt.balanceOf(courtAddress)).to.equal(DEPOSIT + cost);
      expect([staked, rewardsNative, await court.rewardsOf(0n, native)]).to.deep.equal([OKB(497), OKB(3), 0n]);
      expect(await court.held(native)).to.equal(OKB(500));
      for (const j of jury1.slice(0, 3)) {
        const signer = jurorSigner(f, j);
        const fee = await court.rewardsOf(j, usdtAddress);
        await expect(court.connect(signer).claimRewards(j, usdtAddress)).to.changeTokenBalances(
          usdt,
          [signer, court],
          [fee, -fee],
        );
        await expect(court.connect(signer).claimRewards(j, native)).to.changeEtherBalances(
          [signer, court],
          [OKB(1), -OKB(1)],
        );
      }
      const silent = jury1[4];
      const free = (await court.getEvaluator(silent)).staked;
      expect(free).to.equal(OKB(98));
      await expect(court.connect(jurorSigner(f, silent)).requestUnstake(silent, free)).to.emit(
        court,
        "UnstakeRequested",
      );
    });

    it("before the timeout a draw leaves a short round waiting; at the deadline still waiting; after it, only a draw of >= 64 candidates shrinks it", async function () {
      const f = await loadFixture(fivePool);
      const { court } = f;
      const { caseId } = await ruledP0(f);
      const { deadline } = await bobAppeals(f, caseId);
      await fulfilRandomness(f);
      await court.draw(caseId, 100n);
      expect((await court.getRound(caseId, 1n)).seated).to.equal(5n);

      // Same Drawing phase (no passPhase). At exactly the deadline: still waiting.
      await time.setNextBlockTimestamp(deadline);
      const atDeadline = court.draw(caseId, 100n);
      await expect(atDeadline).not.to.emit(court, "RoundShrunk");
      await expect(atDeadline).not.to.emit(court, "CaseStatusChanged");
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);
      expect((await court.getRound(caseId, 1n)).size).to.equal(7n);
      // advance never moves a Drawing case, even past its deadline.
      await expect(court.advance(caseId))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(caseId, deadline);

      // One second later, a draw of fewer than 64 candidates does not shrink the round.
      const short = court.draw(caseId, SHRINK_DRAWS - 1n);
      await expect(short).not.to.emit(court, "RoundShrunk");
      expect(await court.draw.staticCall(caseId, SHRINK_DRAWS - 1n)).to.equal(5n);
      expect((await court.getRound(caseId, 1n)).size).to.equal(7n);
      expect(await counters(f)).to.deep.include({ casesThisEpoch: 1n, pendingCases: 0n });

      const shrink = court.draw(caseId, SHRINK_DRAWS);
      await expect(shrink).to.emit(court, "RoundShrunk").withArgs(caseId, 1n, 5n);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Commit);
      expect(await counters(f)).to.deep.include({ casesThisEpoch: 0n, pendingCases: 0n });
      await expect(court.draw(caseId, SHRINK_DRAWS))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingWrongStatus")
        .withArgs(caseId, CaseStatus.Commit);

      // The shrunk round's size is what fills it: five commits open the reveal period.
      const jury1 = (await court.getRound(caseId, 1n)).jurors.map((j) => BigInt(j));
      await vote(f, caseId, jury1, [Choice.P50, Choice.P50, Choice.P50, Choice.P50, Choice.P50]);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Reveal);

      // A case that started waiting in this epoch is not drawable, even past its own timeout.
      const second = await openCase(f);
      const secondDeadline = (await court.getCase(second.caseId)).deadline;
      await time.increaseTo(secondDeadline + 1n);
      await expect(court.draw(second.caseId, SHRINK_DRAWS))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingNotDrawable")
        .withArgs(second.caseId, 2n, 2n);
    });

    it("nobody seated by the timeout: the round is abandoned like a round nobody committed in, its fee goes to the redraw", async function () {
      const f = await loadFixture(ownerOnlyPool);
      const { court, usdt } = f;
      const usdtAddress = await usdt.getAddress();
      const { caseId } = await openCase(f, PRICE);
      const deadline = (await court.getCase(caseId)).deadline;
      const opened = (await court.queryFilter(court.filters.CaseCreated(caseId)))[0];
      expect(deadline).to.equal(BigInt((await opened.getBlock()).timestamp) + DRAW_TIMEOUT);

      // Before the timeout: nobody can be seated (alice's own evaluator), the case waits.
      await fulfilRandomness(f);
      const early = court.draw(caseId, 100n);
      await expect(early).not.to.emit(court, "RoundAbandoned");
      expect((await court.getRound(caseId, 0n)).seated).to.equal(0n);
      await endDrawing(f);

      await time.increaseTo(deadline);
      await fulfilRandomness(f);
      const abandon = await court.draw(caseId, SHRINK_DRAWS);
      const redrawDeadline = await drawDeadline(abandon);
      await expect(abandon).to.emit(court, "RoundAbandoned").withArgs(caseId, 0n);
      await expect(abandon)
        .to.emit(court, "CaseStatusChanged")
        .withArgs(caseId, 1n, CaseStatus.Drawing, CaseStatus.Drawing, redrawDeadline);
      await expect(abandon).not.to.emit(court, "RoundShrunk");
      const r0 = await court.getRound(caseId, 0n);
      expect([r0.abandoned, r0.ruled, r0.size, r0.seated, r0.fee]).to.deep.equal([true, false, 3n, 0n, 0n]);
      const r1 = await court.getRound(caseId, 1n);
      expect([r1.size, r1.seated, r1.fee]).to.deep.equal([3n, 0n, DEPOSIT]);
      const c = await court.getCase(caseId);
      expect([c.status, c.round, c.appeals, c.markEpoch, c.deadline]).to.deep.equal([
        BigInt(CaseStatus.Drawing),
        1n,
        0n,
        2n,
        redrawDeadline,
      ]);
      // The case left this epoch and waits for the next one: counters exact, no drawing twice.
      expect(await counters(f)).to.deep.include({ epoch: 2n, casesThisEpoch: 0n, pendingCases: 1n });
      await expect(court.draw(caseId, SHRINK_DRAWS))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingNotDrawable")
        .withArgs(caseId, 2n, 2n);
      await expect(court.passPhase()).to.emit(court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 2n);
      await expect(court.execute(caseId, 0n, 6n))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingRoundSettled")
        .withArgs(caseId, 0n);
      expect(await court.held(usdtAddress)).to.equal(DEPOSIT);

      // Evaluators arrive: the next epoch seats the redraw in full.
      const signers = await ethers.getSigners();
      for (let i = 0; i < 3; i++) {
        const signer = signers[FIRST_EVALUATOR_SIGNER + i];
        await f.registry.connect(signer).getFunction("register(string)")(`ipfs://late-${i}`);
        await stakeFor(court, f, signer, await f.registry.agentCount(), OKB(100), false);
      }
      await fulfilRandomness(f);
      expect(await drawJury(f, caseId)).to.have.length(3);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Commit);
      expect(await counters(f)).to.deep.include({ casesThisEpoch: 0n, pendingCases: 0n });
    });
  });

  describe("F2: minStakingTime is at least 1 hour, so the Staking phase cannot be skipped", function () {
    it("setTiming and initialize revert EvaluatorStakingBadParams below 1 hour; 1 hour (the default) is accepted", async function () {
      const f = await loadFixture(fivePool);
      const { court } = f;
      expect(COURT_TIMING.minStakingTime).to.equal(3_600);
      expect((await court.timing()).minStakingTime).to.equal(3_600n);
      for (const minStakingTime of [0, 1, 3_599]) {
        await expect(court.setTiming({ ...COURT_TIMING, minStakingTime })).to.be.revertedWithCustomError(
          court,
          "EvaluatorStakingBadParams",
        );
      }
      await expect(court.setTiming({ ...COURT_TIMING, minStakingTime: 3_600 }))
        .to.emit(court, "TimingSet")
        .withArgs(Object.values({ ...COURT_TIMING, minStakingTime: 3_600 }));

      const [registry, reputation, source] = await Promise.all([
        f.registry.getAddress(),
        f.reputation.getAddress(),
        f.vrfSource.getAddress(),
      ]);
      const init = (minStakingTime: number) =>
        EvaluatorStaking__factory.createInterface().encodeFunctionData("initialize", [
          f.admin.address,
          registry,
          reputation,
          source,
          ethers.ZeroAddress,
          f.treasury.address,
          COURT_PARAMS,
          { ...COURT_TIMING, minStakingTime },
        ]);
      const proxy = new ERC1967Proxy__factory(f.admin);
      await expect(proxy.deploy(f.courtImpl, init(0))).to.be.revertedWithCustomError(
        court,
        "EvaluatorStakingBadParams",
      );
      const fresh = await proxy.deploy(f.courtImpl, init(3_600));
      const freshCourt = EvaluatorStaking__factory.connect(await fresh.getAddress(), f.admin);
      expect((await freshCourt.timing()).minStakingTime).to.equal(3_600n);
    });

    it("passPhase + requestRandomness in one block: the request reverts EvaluatorStakingTooEarly, the queued unstake and settlement land", async function () {
      const f = await loadFixture(fivePool);
      const { court } = f;
      // A ruled round 0 to settle, and a 7-seat appeal round (5 evaluators) keeping a case waiting.
      const { caseId } = await ruledP0(f);
      await bobAppeals(f, caseId);
      await fulfilRandomness(f);
      await court.draw(caseId, 100n);
      const [, , drawingSince] = await court.drawState();
      await time.increaseTo(drawingSince + BigInt(COURT_TIMING.maxDrawingTime));

      const victim = f.evaluators[0];
      const [attacker] = await ethers.getSigners();
      await network.provider.send("evm_setAutomine", [false]);
      let block: number;
      const status = async (h: string) => (await ethers.provider.getTransactionReceipt(h))!.status;
      try {
        const gasLimit = 3_000_000n;
        const a1 = await court.connect(attacker).passPhase({ gasLimit });
        const a2 = await court.connect(attacker).requestRandomness({ gasLimit });
        const v1 = await court.connect(victim.signer).requestUnstake(victim.id, OKB(1), { gasLimit });
        const v2 = await court.connect(victim.signer).execute(caseId, 0n, 6n, { gasLimit });
        await mine();
        block = (await ethers.provider.getTransactionReceipt(a1.hash))!.blockNumber;
        expect([
          await status(a1.hash),
          await status(a2.hash),
          await status(v1.hash),
          await status(v2.hash),
        ]).to.deep.equal([1, 0, 1, 1]);
      } finally {
        await network.provider.send("evm_setAutomine", [true]);
      }
      const since = BigInt((await ethers.provider.getBlock(block))!.timestamp);
      const [phase, epoch, phaseSince, , pendingCases] = await court.drawState();
      expect([phase, epoch, phaseSince, pendingCases]).to.deep.equal([BigInt(Phase.Staking), 2n, since, 1n]);
      expect((await court.getEvaluator(victim.id)).unstaking).to.equal(OKB(1));
      expect((await court.getRound(caseId, 0n)).cursor).to.equal(6n);

      // The same request, one block later, with its exact error; it works after minStakingTime.
      const ready = since + BigInt(COURT_TIMING.minStakingTime);
      await time.setNextBlockTimestamp(ready - 1n);
      await expect(court.requestRandomness())
        .to.be.revertedWithCustomError(court, "EvaluatorStakingTooEarly")
        .withArgs(ready);
      await time.setNextBlockTimestamp(ready);
      await expect(court.requestRandomness()).to.emit(court, "RandomnessRequested").withArgs(3n, 3n, 1n);
    });
  });

  describe("F3 (known limitation): party owners are fixed at createDispute, evaluator owners read at the draw", function () {
    it("after the client agent moves to an evaluator's owner, that evaluator may sit on the client's case", async function () {
      // Exactly three evaluators: a 3-seat jury must take all of them.
      const f = await deployCourt({ evaluators: 3 });
      const { court, registry } = f;
      const juror = f.evaluators[0];
      const { caseId } = await openCase(f);
      // The client agent (#1) is transferred to the owner of evaluator #5 while the case waits.
      await registry.connect(f.alice).transferFrom(f.alice.address, juror.signer.address, f.aliceId);
      expect(await registry.ownerOfAgent(f.aliceId)).to.equal(await registry.ownerOfAgent(juror.id));
      await fulfilRandomness(f);
      const jury = await drawJury(f, caseId);
      expect(jury).to.include(juror.id); // matched against the client's owner at createDispute
      expect((await court.getCase(caseId)).clientOwner).to.equal(f.alice.address);
    });

    it("control: with the same ownership at createDispute the evaluator is excluded", async function () {
      const f = await deployCourt({ evaluators: 3 });
      const juror = f.evaluators[0];
      // Same final ownership, but before the case is opened: #5 is excluded, 2 seats of 3 fill.
      const { taskId } = await openCaseAfterTransfer(f, juror.signer.address);
      const caseId = (await f.escrow.getDispute(taskId)).disputeId;
      await fulfilRandomness(f);
      await f.court.draw(caseId, 100n);
      const r = await f.court.getRound(caseId, 0n);
      expect(r.seated).to.equal(2n);
      expect(r.jurors.map((j) => BigInt(j))).not.to.include(juror.id);
    });
  });

  describe("F4 (documented): the court's ERC-7201 namespace is invisible to the upgrades plugin", function () {
    it("EvaluatorStaking's validated layout has no erc7201:agentmarket.storage.EvaluatorStaking (it lives in JuryLogic)", async function () {
      const hre = await import("hardhat");
      const { readValidations } = await import("@openzeppelin/hardhat-upgrades/dist/utils/validations");
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const data: any = await readValidations(hre.default);
      let court: string[] | undefined;
      let escrow: string[] | undefined;
      let library: string[] | undefined;
      for (const run of data.log) {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        for (const [name, c] of Object.entries<any>(run)) {
          const ns = Object.keys(c.layout?.namespaces ?? {});
          if (name === "contracts/court/EvaluatorStaking.sol:EvaluatorStaking") court = ns;
          if (name === "contracts/escrow/TaskEscrow.sol:TaskEscrow") escrow = ns;
          if (name === "contracts/court/JuryLogic.sol:JuryLogic") library = ns;
        }
      }
      // TaskEscrow's own namespace is checked on upgrade; the court's is not (the snapshot test
      // test/upgrade/CourtStorageLayout.test.ts checks it instead).
      expect(escrow).to.include("erc7201:agentmarket.storage.TaskEscrow");
      expect(library).to.include("erc7201:agentmarket.storage.EvaluatorStaking");
      expect(court).to.not.include("erc7201:agentmarket.storage.EvaluatorStaking");
    });
  });
});

/** Opens alice's case, but hands the client agent to `newOwner` just before the deposit. */
async function openCaseAfterTransfer(f: CourtFixture, newOwner: string) {
  const { postSubmitted } = await import("../fixtures/escrow");
  const price = usd(100);
  const taskId = await postSubmitted(f, { budget: price, maxBudget: price });
  await f.escrow.connect(f.alice).reject(taskId, ethers.id("not good"));
  await f.escrow.connect(f.bob).raiseDispute(taskId);
  await f.registry.connect(f.alice).transferFrom(f.alice.address, newOwner, f.aliceId);
  const signer = await ethers.getSigner(newOwner);
  await f.usdt.mint(newOwner, price);
  await f.usdt.connect(signer).approve(await f.escrow.getAddress(), ethers.MaxUint256);
  await f.escrow.connect(signer).payDisputeDeposit(taskId);
  return { taskId };
}
