import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import {
  COURT_PARAMS,
  CaseStatus,
  Choice,
  MIN_STAKE,
  OKB,
  Phase,
  SALT,
  deployCourt,
  drawJury,
  fulfilRandomness,
  jurorSigner,
  openCase,
  revealAll,
  vote,
  drawDeadline,
  waitForStakingTime,
  type CourtFixture,
} from "../fixtures/court";
import { Status } from "../fixtures/escrow";
import { now, usd } from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const BPS = 10_000n;
/** Stake per unit of sum-tree weight (EvaluatorStaking.WEIGHT_UNIT). */
const WEIGHT_UNIT = 10n ** 16n;
const NATIVE = ethers.ZeroAddress;
/** Eight evaluators (#5-#12) with different stakes, so rewards pro rata to stake are visible. */
const STAKES = [100, 130, 170, 110, 190, 230, 70, 250].map((n) => OKB(n));
const CASE_FEE = usd(5);
const PRICE = usd(100);
const PROTOCOL_FEE_BPS = 100n;
const SLASH_MINORITY = (MIN_STAKE * BigInt(COURT_PARAMS.slashMinorityBps)) / BPS; // 1 OKB
const SLASH_TIMEOUT = (MIN_STAKE * BigInt(COURT_PARAMS.slashTimeoutBps)) / BPS; // 2 OKB
const COMMIT = BigInt(COURT_PARAMS.commitPeriod);
const REVEAL = BigInt(COURT_PARAMS.revealPeriod);
const APPEAL = BigInt(COURT_PARAMS.appealPeriod);

// ---------------------------------------------------------------------- fixtures

function eightEvaluators() {
  return deployCourt({ evaluators: 8, stake: STAKES });
}

/** A case whose first jury (3 seats) is drawn, back in the Staking phase: the Commit period. */
async function commitPhase() {
  const f = await eightEvaluators();
  const { taskId, caseId } = await openCase(f);
  await fulfilRandomness(f);
  const jurors = await drawJury(f, caseId);
  await f.court.passPhase();
  const deadline = (await f.court.getCase(caseId)).deadline;
  return { ...f, taskId, caseId, jurors, deadline };
}

/** Every juror committed: the Reveal period. Choices P75, P75, P50. */
async function revealPhase() {
  const f = await commitPhase();
  await vote(f, f.caseId, f.jurors, [Choice.P75, Choice.P75, Choice.P50]);
  return { ...f, deadline: (await f.court.getCase(f.caseId)).deadline };
}

/** The first round ruled P75 (P75, P75, P50): the Appeal period. */
async function ruled() {
  const f = await revealPhase();
  await revealAll(f, f.caseId, f.jurors, [Choice.P75, Choice.P75, Choice.P50]);
  return { ...f, deadline: (await f.court.getCase(f.caseId)).deadline };
}

/** The ruled case, alice appealed (approved the court for USDT): round 1 waits for a draw. */
async function appealed() {
  const f = await ruled();
  await f.usdt.connect(f.alice).approve(await f.court.getAddress(), ethers.MaxUint256);
  const cost = await f.court.appealCost(f.caseId);
  await f.court.connect(f.alice).appeal(f.caseId, f.aliceId);
  return { ...f, cost };
}

/** The appeal round (7 seats) drawn: the Commit period of round 1. */
async function appealDrawn() {
  const f = await appealed();
  await fulfilRandomness(f);
  await f.court.draw(f.caseId, 300n);
  await f.court.passPhase();
  const jurors1 = (await f.court.getRound(f.caseId, 1n)).jurors.map((j) => BigInt(j));
  return { ...f, jurors1 };
}

/** Cases allow a single round: the first ruling is final at once. */
async function singleRound() {
  const f = await eightEvaluators();
  await f.court.setParams({ ...COURT_PARAMS, maxRounds: 1 });
  const { taskId, caseId } = await openCase(f);
  await fulfilRandomness(f);
  const jurors = await drawJury(f, caseId);
  await f.court.passPhase();
  await vote(f, caseId, jurors, [Choice.P0, Choice.P0, Choice.P0]);
  return { ...f, taskId, caseId, jurors };
}

// ---------------------------------------------------------------------- helpers

/** Fulfils the request already made (the court is in its Generating phase). */
async function fulfilRandomness2(f: CourtFixture) {
  const [, , , requestId] = await f.court.drawState();
  await f.coordinator.fulfillRandomWords(requestId, await f.vrfSource.getAddress());
}

type F = CourtFixture;

/** Pins the next block's timestamp `offset` seconds after the latest and returns it. */
async function pin(offset = 10n) {
  const t = (await now()) + offset;
  await time.setNextBlockTimestamp(t);
  return t;
}

/** The commitment of `juror` voting `choice` with the fixture's salt. */
const hashOf = (f: F, caseId: bigint, round: bigint, juror: bigint, choice: number) =>
  f.court.commitmentOf(caseId, round, juror, choice, SALT(juror));

const commitAs = async (f: F, caseId: bigint, round: bigint, juror: bigint, choice: number) =>
  f.court.connect(jurorSigner(f, juror)).commit(caseId, juror, await hashOf(f, caseId, round, juror, choice));

const revealAs = (f: F, caseId: bigint, juror: bigint, choice: number) =>
  f.court.connect(jurorSigner(f, juror)).reveal(caseId, juror, choice, SALT(juror));

/** A coherent juror's share of `pot`: the part between the cumulative stakes before and after it. */
const share = (pot: bigint, before: bigint, after: bigint, total: bigint) =>
  (pot * after) / total - (pot * before) / total;

/** Every juror's stake at the draw. */
async function stakesOf(f: F, caseId: bigint, round: bigint, jurors: bigint[]) {
  const out: bigint[] = [];
  for (const j of jurors) out.push((await f.court.getVote(caseId, round, j)).stake);
  return out;
}

/** The court's balances equal what it books as held. */
async function expectSolvent(f: F) {
  const address = await f.court.getAddress();
  expect(await ethers.provider.getBalance(address)).to.equal(await f.court.held(NATIVE));
  expect(await f.usdt.balanceOf(address)).to.equal(await f.court.held(await f.usdt.getAddress()));
}

// ---------------------------------------------------------------------- tests

describe("EvaluatorStaking: voting", function () {
  describe("commit", function () {
    it("records the commitment (VoteCommitted); the last one opens the reveal period", async function () {
      const f = await loadFixture(commitPhase);
      const [a, b, c] = f.jurors;
      const hash = await hashOf(f, f.caseId, 0n, a, Choice.P50);
      await expect(f.court.connect(jurorSigner(f, a)).commit(f.caseId, a, hash))
        .to.emit(f.court, "VoteCommitted")
        .withArgs(f.caseId, 0n, a, hash);
      expect((await f.court.getVote(f.caseId, 0n, a)).commitHash).to.equal(hash);
      expect((await f.court.getRound(f.caseId, 0n)).committed).to.equal(1n);
      await expect(commitAs(f, f.caseId, 0n, b, Choice.P50)).to.not.emit(f.court, "CaseStatusChanged");
      const t = await pin();
      await expect(commitAs(f, f.caseId, 0n, c, Choice.P50))
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Commit, CaseStatus.Reveal, t + REVEAL);
      const cs = await f.court.getCase(f.caseId);
      expect([cs.status, cs.deadline]).to.deep.equal([BigInt(CaseStatus.Reveal), t + REVEAL]);
    });

    it("works up to the deadline, then reverts EvaluatorStakingDeadlinePassed", async function () {
      const f = await loadFixture(commitPhase);
      const [a, b] = f.jurors;
      await time.setNextBlockTimestamp(f.deadline);
      await expect(commitAs(f, f.caseId, 0n, a, Choice.P0)).to.emit(f.court, "VoteCommitted");
      await expect(commitAs(f, f.caseId, 0n, b, Choice.P0))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlinePassed")
        .withArgs(f.caseId, f.deadline);
    });

    it("works while paused", async function () {
      const f = await loadFixture(commitPhase);
      await f.court.pause();
      await expect(commitAs(f, f.caseId, 0n, f.jurors[0], Choice.P0)).to.emit(f.court, "VoteCommitted");
    });

    it("reverts EvaluatorStakingEmptyCommit for a zero hash", async function () {
      const f = await loadFixture(commitPhase);
      const a = f.jurors[0];
      await expect(
        f.court.connect(jurorSigner(f, a)).commit(f.caseId, a, ethers.ZeroHash),
      ).to.be.revertedWithCustomError(f.court, "EvaluatorStakingEmptyCommit");
    });

    it("reverts EvaluatorStakingWrongStatus outside the commit period, UnknownCase for an unknown case", async function () {
      const f = await loadFixture(revealPhase);
      const a = f.jurors[0];
      const hash = ethers.id("x");
      await expect(f.court.connect(jurorSigner(f, a)).commit(f.caseId, a, hash))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongStatus")
        .withArgs(f.caseId, CaseStatus.Reveal);
      await expect(f.court.connect(jurorSigner(f, a)).commit(99n, a, hash))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(99n);
    });

    it("reverts EvaluatorStakingNotAuthorized for someone who cannot act for the juror", async function () {
      const f = await loadFixture(commitPhase);
      const a = f.jurors[0];
      await expect(f.court.connect(f.stranger).commit(f.caseId, a, ethers.id("x")))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(a, f.stranger.address);
    });

    it("reverts EvaluatorStakingNotJuror for an evaluator not seated in the round", async function () {
      const f = await loadFixture(commitPhase);
      const outsider = f.evaluators.find((e) => !f.jurors.includes(e.id))!;
      await expect(f.court.connect(outsider.signer).commit(f.caseId, outsider.id, ethers.id("x")))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotJuror")
        .withArgs(f.caseId, 0n, outsider.id);
    });

    it("reverts EvaluatorStakingAlreadyCommitted for a second commitment", async function () {
      const f = await loadFixture(commitPhase);
      const a = f.jurors[0];
      await commitAs(f, f.caseId, 0n, a, Choice.P0);
      await expect(commitAs(f, f.caseId, 0n, a, Choice.P25))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingAlreadyCommitted")
        .withArgs(f.caseId, a);
    });
  });

  describe("reveal", function () {
    it("records the vote (VoteRevealed), counts and stake by choice", async function () {
      const f = await loadFixture(revealPhase);
      const [a, b] = f.jurors;
      const [sa, sb] = await stakesOf(f, f.caseId, 0n, [a, b]);
      await expect(revealAs(f, f.caseId, a, Choice.P75))
        .to.emit(f.court, "VoteRevealed")
        .withArgs(f.caseId, 0n, a, Choice.P75);
      await expect(revealAs(f, f.caseId, b, Choice.P75)).to.not.emit(f.court, "RoundRuled");
      const v = await f.court.getVote(f.caseId, 0n, a);
      expect([v.choice, v.revealed, v.stake]).to.deep.equal([BigInt(Choice.P75), true, sa]);
      const r = await f.court.getRound(f.caseId, 0n);
      expect(r.revealed).to.equal(2n);
      expect(r.counts).to.deep.equal([0n, 0n, 0n, 2n, 0n]);
      expect(r.stakeByChoice).to.deep.equal([0n, 0n, 0n, sa + sb, 0n]);
    });

    it("the last reveal rules (median) and opens the appeal period", async function () {
      const f = await loadFixture(revealPhase);
      const [a, b, c] = f.jurors;
      await revealAs(f, f.caseId, c, Choice.P50);
      await revealAs(f, f.caseId, a, Choice.P75);
      const t = await pin();
      const tx = revealAs(f, f.caseId, b, Choice.P75);
      await expect(tx).to.emit(f.court, "RoundRuled").withArgs(f.caseId, 0n, Choice.P75, 3n);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Reveal, CaseStatus.Appeal, t + APPEAL);
      const r = await f.court.getRound(f.caseId, 0n);
      expect([r.ruled, r.abandoned, r.ruling]).to.deep.equal([true, false, BigInt(Choice.P75)]);
    });

    it("rules the lower median of an even number of reveals", async function () {
      const f = await loadFixture(commitPhase);
      const [a, b] = f.jurors;
      await commitAs(f, f.caseId, 0n, a, Choice.P100);
      await commitAs(f, f.caseId, 0n, b, Choice.P25);
      await time.increaseTo(f.deadline + 1n);
      await f.court.advance(f.caseId);
      await revealAs(f, f.caseId, a, Choice.P100);
      await expect(revealAs(f, f.caseId, b, Choice.P25))
        .to.emit(f.court, "RoundRuled")
        .withArgs(f.caseId, 0n, Choice.P25, 2n);
    });

    it("works while paused", async function () {
      const f = await loadFixture(revealPhase);
      await f.court.pause();
      await expect(revealAs(f, f.caseId, f.jurors[0], Choice.P75)).to.emit(f.court, "VoteRevealed");
    });

    it("reverts EvaluatorStakingBadChoice for a choice above 4", async function () {
      const f = await loadFixture(revealPhase);
      const a = f.jurors[0];
      await expect(f.court.connect(jurorSigner(f, a)).reveal(f.caseId, a, 5n, SALT(a)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingBadChoice")
        .withArgs(5n);
    });

    it("reverts EvaluatorStakingNotCommitted for a juror who did not commit", async function () {
      const f = await loadFixture(commitPhase);
      const [a, b, c] = f.jurors;
      await commitAs(f, f.caseId, 0n, a, Choice.P0);
      await commitAs(f, f.caseId, 0n, b, Choice.P0);
      await time.increaseTo(f.deadline + 1n);
      await f.court.advance(f.caseId);
      await expect(revealAs(f, f.caseId, c, Choice.P0))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotCommitted")
        .withArgs(f.caseId, c);
    });

    it("reverts EvaluatorStakingAlreadyRevealed for a second reveal", async function () {
      const f = await loadFixture(revealPhase);
      const a = f.jurors[0];
      await revealAs(f, f.caseId, a, Choice.P75);
      await expect(revealAs(f, f.caseId, a, Choice.P75))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingAlreadyRevealed")
        .withArgs(f.caseId, a);
    });

    it("reverts EvaluatorStakingRevealMismatch for another choice or salt", async function () {
      const f = await loadFixture(revealPhase);
      const a = f.jurors[0];
      await expect(revealAs(f, f.caseId, a, Choice.P50))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingRevealMismatch")
        .withArgs(f.caseId, a);
      await expect(f.court.connect(jurorSigner(f, a)).reveal(f.caseId, a, Choice.P75, ethers.id("other salt")))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingRevealMismatch")
        .withArgs(f.caseId, a);
    });

    it("reverts EvaluatorStakingDeadlinePassed after the reveal period", async function () {
      const f = await loadFixture(revealPhase);
      await time.setNextBlockTimestamp(f.deadline + 1n);
      await expect(revealAs(f, f.caseId, f.jurors[0], Choice.P75))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlinePassed")
        .withArgs(f.caseId, f.deadline);
    });

    it("reverts EvaluatorStakingNotAuthorized, NotJuror and WrongStatus", async function () {
      const f = await loadFixture(revealPhase);
      const a = f.jurors[0];
      await expect(f.court.connect(f.stranger).reveal(f.caseId, a, Choice.P75, SALT(a)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(a, f.stranger.address);
      const outsider = f.evaluators.find((e) => !f.jurors.includes(e.id))!;
      await expect(f.court.connect(outsider.signer).reveal(f.caseId, outsider.id, Choice.P75, SALT(outsider.id)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotJuror")
        .withArgs(f.caseId, 0n, outsider.id);
      await revealAll(f, f.caseId, f.jurors, [Choice.P75, Choice.P75, Choice.P50]);
      await expect(revealAs(f, f.caseId, a, Choice.P75))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongStatus")
        .withArgs(f.caseId, CaseStatus.Appeal);
    });
  });

  describe("advance", function () {
    it("reverts EvaluatorStakingDeadlineNotPassed before the deadline, while drawing, once ruled", async function () {
      const f = await loadFixture(commitPhase);
      await time.setNextBlockTimestamp(f.deadline);
      await expect(f.court.advance(f.caseId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(f.caseId, f.deadline);
      const second = await openCase(f);
      // A case in Drawing only moves through draw, even past its draw timeout.
      const drawTimeout = (await f.court.getCase(second.caseId)).deadline;
      await time.increaseTo(drawTimeout + 1n);
      await expect(f.court.advance(second.caseId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(second.caseId, drawTimeout);
      await expect(f.court.advance(99n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(99n);
    });

    it("commit timeout with commitments: the reveal period starts", async function () {
      const f = await loadFixture(commitPhase);
      await commitAs(f, f.caseId, 0n, f.jurors[1], Choice.P0);
      const t = f.deadline + 1n;
      await time.setNextBlockTimestamp(t);
      await expect(f.court.connect(f.stranger).advance(f.caseId))
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Commit, CaseStatus.Reveal, t + REVEAL);
    });

    it("commit timeout without commitments: RoundAbandoned and a redraw of the same size and fee", async function () {
      const f = await loadFixture(commitPhase);
      await time.increaseTo(f.deadline + 1n);
      const tx = f.court.advance(f.caseId);
      await expect(tx).to.emit(f.court, "RoundAbandoned").withArgs(f.caseId, 0n);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 1n, CaseStatus.Commit, CaseStatus.Drawing, await drawDeadline(tx));
      const c = await f.court.getCase(f.caseId);
      expect([c.status, c.round, c.appeals, c.markEpoch]).to.deep.equal([BigInt(CaseStatus.Drawing), 1n, 0n, 1n]);
      const r0 = await f.court.getRound(f.caseId, 0n);
      expect([r0.abandoned, r0.ruled, r0.fee]).to.deep.equal([true, false, 0n]);
      const r1 = await f.court.getRound(f.caseId, 1n);
      expect([r1.size, r1.fee, r1.seated]).to.deep.equal([3n, CASE_FEE, 0n]);
      expect((await f.court.drawState())[4]).to.equal(1n);
      // The redraw seats a new jury in the next epoch.
      await fulfilRandomness(f);
      expect(await drawJury(f, f.caseId)).to.have.length(3);
      expect((await f.court.getCase(f.caseId)).status).to.equal(CaseStatus.Commit);
    });

    it("reveal timeout with reveals: the round is ruled on what was revealed", async function () {
      const f = await loadFixture(revealPhase);
      const [a, , c] = f.jurors;
      await revealAs(f, f.caseId, a, Choice.P75);
      await revealAs(f, f.caseId, c, Choice.P50);
      const t = f.deadline + 1n;
      await time.setNextBlockTimestamp(t);
      const tx = f.court.advance(f.caseId);
      await expect(tx).to.emit(f.court, "RoundRuled").withArgs(f.caseId, 0n, Choice.P50, 2n);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Reveal, CaseStatus.Appeal, t + APPEAL);
    });

    it("reveal timeout without reveals: RoundAbandoned and a redraw", async function () {
      const f = await loadFixture(revealPhase);
      await time.increaseTo(f.deadline + 1n);
      const tx = f.court.advance(f.caseId);
      await expect(tx).to.emit(f.court, "RoundAbandoned").withArgs(f.caseId, 0n);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 1n, CaseStatus.Reveal, CaseStatus.Drawing, await drawDeadline(tx));
      expect((await f.court.getRound(f.caseId, 1n)).fee).to.equal(CASE_FEE);
    });

    it("appeal timeout: FinalRuling, and TaskEscrow pays the ruled split exactly", async function () {
      const f = await loadFixture(ruled);
      await time.setNextBlockTimestamp(f.deadline);
      await expect(f.court.advance(f.caseId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(f.caseId, f.deadline);
      // P75: the provider gets 75% of the price minus the 1% protocol fee on it, and 75% of its
      // own 5 USDT deposit (alice's deposit paid the court); the client the rest.
      const toProvider = (PRICE * 7_500n) / BPS;
      const fee = (toProvider * PROTOCOL_FEE_BPS) / BPS;
      const toClient = PRICE - toProvider;
      const depositToProvider = (CASE_FEE * 7_500n) / BPS;
      const depositToClient = CASE_FEE - depositToProvider;
      const tx = f.court.connect(f.stranger).advance(f.caseId);
      await expect(tx)
        .to.emit(f.court, "FinalRuling")
        .withArgs(f.caseId, await f.escrow.getAddress(), Choice.P75);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Appeal, CaseStatus.Ruled, 0n);
      await expect(tx)
        .to.emit(f.escrow, "Ruling")
        .withArgs(await f.court.getAddress(), f.caseId, Choice.P75 + 1);
      await expect(tx)
        .to.emit(f.escrow, "TaskSettled")
        .withArgs(f.taskId, toProvider - fee, toClient, fee);
      await expect(tx).to.emit(f.escrow, "DepositsReturned").withArgs(f.taskId, depositToProvider, depositToClient);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.alice, f.escrow, f.court],
        [
          toProvider - fee + depositToProvider,
          toClient + depositToClient,
          -(toProvider - fee + toClient + CASE_FEE),
          0n,
        ],
      );
      expect(toProvider - fee + depositToProvider).to.equal(usd(78));
      expect(toClient + depositToClient).to.equal(usd("26.25"));
      expect((await f.escrow.getTask(f.taskId)).status).to.equal(Status.Resolved);
      const c = await f.court.getCase(f.caseId);
      expect([c.status, c.deadline]).to.deep.equal([BigInt(CaseStatus.Ruled), 0n]);
      await expect(f.court.advance(f.caseId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(f.caseId, 0n);
    });

    it("the last round has no appeal period: the ruling is final from the next block", async function () {
      const f = await loadFixture(singleRound);
      const [a, b, c] = f.jurors;
      await revealAs(f, f.caseId, a, Choice.P0);
      await revealAs(f, f.caseId, b, Choice.P0);
      const t = await pin();
      await expect(revealAs(f, f.caseId, c, Choice.P0))
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 0n, CaseStatus.Reveal, CaseStatus.Appeal, t);
      await expect(f.court.advance(f.caseId))
        .to.emit(f.court, "FinalRuling")
        .withArgs(f.caseId, await f.escrow.getAddress(), Choice.P0);
      expect((await f.escrow.getTask(f.taskId)).status).to.equal(Status.Resolved);
    });
  });

  describe("appeal", function () {
    it("a case without an arbitration fee is appealed for free: no token moves", async function () {
      const f = await loadFixture(eightEvaluators);
      await f.escrow.setFees(100, 0); // no dispute deposits for tasks posted from now on
      const { caseId } = await openCase(f);
      expect((await f.court.getCase(caseId)).fee).to.equal(0n);
      await fulfilRandomness(f);
      const jurors = await drawJury(f, caseId);
      await f.court.passPhase();
      await vote(f, caseId, jurors, [Choice.P0, Choice.P0, Choice.P0]);
      await revealAll(f, caseId, jurors, [Choice.P0, Choice.P0, Choice.P0]);
      expect(await f.court.appealCost(caseId)).to.equal(0n);
      const tx = f.court.connect(f.bob).appeal(caseId, f.bobId);
      await expect(tx).to.emit(f.court, "Appealed").withArgs(caseId, 1n, f.bobId, f.bob.address, 0n, 7n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.court], [0n, 0n]);
      expect((await f.court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);
    });

    it("takes appealCost from the caller and opens a round of 2n + 1 jurors (Appealed)", async function () {
      const f = await loadFixture(ruled);
      await f.usdt.connect(f.alice).approve(await f.court.getAddress(), ethers.MaxUint256);
      const cost = await f.court.appealCost(f.caseId);
      expect(cost).to.equal((CASE_FEE * 7n * BigInt(COURT_PARAMS.appealFeeBps)) / (3n * BPS));
      const tx = f.court.connect(f.alice).appeal(f.caseId, f.aliceId);
      await expect(tx).to.emit(f.court, "Appealed").withArgs(f.caseId, 1n, f.aliceId, f.alice.address, cost, 7n);
      await expect(tx)
        .to.emit(f.court, "CaseStatusChanged")
        .withArgs(f.caseId, 1n, CaseStatus.Appeal, CaseStatus.Drawing, await drawDeadline(tx));
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.court], [-cost, cost]);
      const c = await f.court.getCase(f.caseId);
      expect([c.status, c.round, c.appeals, c.markEpoch]).to.deep.equal([BigInt(CaseStatus.Drawing), 1n, 1n, 1n]);
      const r = await f.court.getRound(f.caseId, 1n);
      expect([r.size, r.fee, r.seated]).to.deep.equal([7n, cost, 0n]);
      expect(await f.court.held(await f.usdt.getAddress())).to.equal(CASE_FEE + cost);
      // The next appeal would seat 15.
      expect(await f.court.appealCost(f.caseId)).to.equal((CASE_FEE * 15n) / 3n);
      await expectSolvent(f);
    });

    it("an operator of a party may appeal for it and pays itself", async function () {
      const f = await loadFixture(ruled);
      const expiry = (await now()) + 86_400n;
      await f.registry
        .connect(f.bob)
        .setOperator(f.bobId, f.operator.address, { expiry, minScoreBps: 0, allowListOnly: false });
      await f.usdt.connect(f.operator).approve(await f.court.getAddress(), ethers.MaxUint256);
      const cost = await f.court.appealCost(f.caseId);
      const tx = f.court.connect(f.operator).appeal(f.caseId, f.bobId);
      await expect(tx).to.emit(f.court, "Appealed").withArgs(f.caseId, 1n, f.bobId, f.operator.address, cost, 7n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.operator, f.bob, f.court], [-cost, 0n, cost]);
    });

    it("reverts EvaluatorStakingNotParty for agent 0 and for a third agent", async function () {
      const f = await loadFixture(ruled);
      await expect(f.court.connect(f.carol).appeal(f.caseId, f.carolId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotParty")
        .withArgs(f.caseId, f.carolId);
      await expect(f.court.connect(f.alice).appeal(f.caseId, 0n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotParty")
        .withArgs(f.caseId, 0n);
    });

    it("reverts EvaluatorStakingNotAuthorized for someone who cannot act for the party", async function () {
      const f = await loadFixture(ruled);
      await expect(f.court.connect(f.bob).appeal(f.caseId, f.aliceId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotAuthorized")
        .withArgs(f.aliceId, f.bob.address);
    });

    it("reverts EvaluatorStakingDeadlinePassed after the appeal period", async function () {
      const f = await loadFixture(ruled);
      await f.usdt.connect(f.alice).approve(await f.court.getAddress(), ethers.MaxUint256);
      await time.setNextBlockTimestamp(f.deadline + 1n);
      await expect(f.court.connect(f.alice).appeal(f.caseId, f.aliceId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingDeadlinePassed")
        .withArgs(f.caseId, f.deadline);
    });

    it("reverts EvaluatorStakingWrongStatus outside the appeal period", async function () {
      const f = await loadFixture(revealPhase);
      await expect(f.court.connect(f.alice).appeal(f.caseId, f.aliceId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongStatus")
        .withArgs(f.caseId, CaseStatus.Reveal);
    });

    it("reverts EvaluatorStakingMaxRounds on the last round (checked before its empty appeal window)", async function () {
      const f = await loadFixture(singleRound);
      await f.usdt.connect(f.alice).approve(await f.court.getAddress(), ethers.MaxUint256);
      const [a, b, c] = f.jurors;
      await revealAs(f, f.caseId, a, Choice.P0);
      await revealAs(f, f.caseId, b, Choice.P0);
      const t = await pin();
      await revealAs(f, f.caseId, c, Choice.P0);
      // The last round's appeal window is 0: the deadline is the ruling's timestamp, already past
      // in the next block; the round limit is checked first.
      const ruledCase = await f.court.getCase(f.caseId);
      expect([ruledCase.status, ruledCase.deadline, ruledCase.appeals]).to.deep.equal([
        BigInt(CaseStatus.Appeal),
        t,
        0n,
      ]);
      await expect(f.court.connect(f.alice).appeal(f.caseId, f.aliceId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingMaxRounds")
        .withArgs(f.caseId, 1n);
      await expect(f.court.connect(f.bob).appeal(f.caseId, f.bobId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingMaxRounds")
        .withArgs(f.caseId, 1n);
      // Also long after the ruling, and nothing moved.
      await time.increase(APPEAL);
      await expect(f.court.connect(f.alice).appeal(f.caseId, f.aliceId))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingMaxRounds")
        .withArgs(f.caseId, 1n);
      const after = await f.court.getCase(f.caseId);
      expect([after.status, after.round, after.appeals]).to.deep.equal([BigInt(CaseStatus.Appeal), 0n, 0n]);
      expect(await f.court.held(await f.usdt.getAddress())).to.equal(CASE_FEE);
    });

    it("the appeal round is drawn with 7 distinct jurors", async function () {
      const f = await loadFixture(appealDrawn);
      expect(f.jurors1).to.have.length(7);
      expect(new Set(f.jurors1.map(String)).size).to.equal(7);
      const c = await f.court.getCase(f.caseId);
      expect(c.status).to.equal(CaseStatus.Commit);
      expect((await f.court.getRound(f.caseId, 1n)).fee).to.equal(f.cost);
    });
  });

  describe("execute", function () {
    it("reverts EvaluatorStakingWrongPhase outside Staking", async function () {
      const f = await loadFixture(appealed);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      await expect(f.court.execute(f.caseId, 0n, 6n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
    });

    it("reverts EvaluatorStakingRoundOpen for a round without a ruling, UnknownCase for an unknown case", async function () {
      const f = await loadFixture(revealPhase);
      await expect(f.court.execute(f.caseId, 0n, 6n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingRoundOpen")
        .withArgs(f.caseId, 0n);
      await expect(f.court.execute(99n, 0n, 6n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingUnknownCase")
        .withArgs(99n);
    });

    it("settles in batches (slashes first, rewards second), then reverts EvaluatorStakingRoundSettled", async function () {
      const f = await loadFixture(ruled);
      const [a, b, c] = f.jurors;
      const [sa, sb] = await stakesOf(f, f.caseId, 0n, [a, b]);
      // Step 1: a is coherent, nothing happens but the cursor.
      await expect(f.court.execute(f.caseId, 0n, 1n)).to.not.emit(f.court, "JurorSlashed");
      expect((await f.court.getRound(f.caseId, 0n)).cursor).to.equal(1n);
      // Steps 2-3: b coherent, c incoherent (P50 against P75): 10% of the 10 OKB lock.
      await expect(f.court.execute(f.caseId, 0n, 2n))
        .to.emit(f.court, "JurorSlashed")
        .withArgs(f.caseId, 0n, c, SLASH_MINORITY, false, 0n);
      const r = await f.court.getRound(f.caseId, 0n);
      expect([r.cursor, r.slashPot]).to.deep.equal([3n, SLASH_MINORITY]);
      // Steps 4-6: rewards, pro rata to stake, in one batch larger than what is left.
      const total = sa + sb;
      const tx = f.court.execute(f.caseId, 0n, 100n);
      await expect(tx)
        .to.emit(f.court, "JurorRewarded")
        .withArgs(f.caseId, 0n, a, share(CASE_FEE, 0n, sa, total), share(SLASH_MINORITY, 0n, sa, total));
      await expect(tx)
        .to.emit(f.court, "JurorRewarded")
        .withArgs(f.caseId, 0n, b, share(CASE_FEE, sa, total, total), share(SLASH_MINORITY, sa, total, total));
      expect((await f.court.getRound(f.caseId, 0n)).cursor).to.equal(6n);
      await expect(f.court.execute(f.caseId, 0n, 1n))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingRoundSettled")
        .withArgs(f.caseId, 0n);
      const usdt = await f.usdt.getAddress();
      expect((await f.court.rewardsOf(a, usdt)) + (await f.court.rewardsOf(b, usdt))).to.equal(CASE_FEE);
      expect((await f.court.rewardsOf(a, NATIVE)) + (await f.court.rewardsOf(b, NATIVE))).to.equal(SLASH_MINORITY);
      for (const j of [a, b, c]) expect((await f.court.getEvaluator(j)).locked).to.equal(0n);
      await expectSolvent(f);
    });

    it("a settlement merges no pending stake and never raises a weight", async function () {
      const f = await loadFixture(ruled);
      const c = f.jurors[2]; // incoherent: P50 against P75
      // c adds stake during a draw epoch: it waits as pending, through the settlement.
      const second = await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      await f.court.connect(jurorSigner(f, c)).stake(c, OKB(5), { value: OKB(5) });
      await fulfilRandomness2(f);
      await f.court.draw(second.caseId, 100n);
      await f.court.passPhase();
      const before = await f.court.getEvaluator(c);
      expect(before.pending).to.equal(OKB(5));
      await f.court.execute(f.caseId, 0n, 6n);
      const after = await f.court.getEvaluator(c);
      expect([after.staked, after.pending]).to.deep.equal([before.staked - SLASH_MINORITY, OKB(5)]);
      expect(await f.court.weightOf(c)).to.equal((before.staked - SLASH_MINORITY) / WEIGHT_UNIT);
      // The pending stake joins when the evaluator (or anyone) syncs it.
      await f.court.syncStake(c);
      expect(await f.court.weightOf(c)).to.equal((before.staked - SLASH_MINORITY + OKB(5)) / WEIGHT_UNIT);
      await expectSolvent(f);
    });

    it("exact slashes: incoherent 10% of the lock, missed 20% and a cooldown; the coherent juror takes all", async function () {
      const f = await loadFixture(commitPhase);
      const [a, b, c] = f.jurors;
      const [sa, sb, sc] = await stakesOf(f, f.caseId, 0n, f.jurors);
      await commitAs(f, f.caseId, 0n, a, Choice.P75);
      await commitAs(f, f.caseId, 0n, b, Choice.P25);
      await time.increaseTo(f.deadline + 1n);
      await f.court.advance(f.caseId);
      await revealAs(f, f.caseId, a, Choice.P75);
      // Lower median of {P25, P75}: P25, b is coherent.
      await expect(revealAs(f, f.caseId, b, Choice.P25))
        .to.emit(f.court, "RoundRuled")
        .withArgs(f.caseId, 0n, Choice.P25, 2n);
      const t = await pin();
      const tx = f.court.execute(f.caseId, 0n, 6n);
      await expect(tx).to.emit(f.court, "JurorSlashed").withArgs(f.caseId, 0n, a, SLASH_MINORITY, false, 0n);
      await expect(tx)
        .to.emit(f.court, "JurorSlashed")
        .withArgs(f.caseId, 0n, c, SLASH_TIMEOUT, true, t + BigInt(COURT_PARAMS.jurorCooldown));
      await expect(tx)
        .to.emit(f.court, "JurorRewarded")
        .withArgs(f.caseId, 0n, b, CASE_FEE, SLASH_MINORITY + SLASH_TIMEOUT);
      await expect(tx).to.emit(f.reputation, "VoteRecorded").withArgs(a, false);
      await expect(tx).to.emit(f.reputation, "VoteRecorded").withArgs(b, true);
      await expect(tx).to.emit(f.reputation, "VoteRecorded").withArgs(c, false);
      await expect(tx)
        .to.emit(f.court, "StakeSynced")
        .withArgs(c, sc - SLASH_TIMEOUT, (sc - SLASH_TIMEOUT) / WEIGHT_UNIT);
      const ea = await f.court.getEvaluator(a);
      const eb = await f.court.getEvaluator(b);
      const ec = await f.court.getEvaluator(c);
      expect([ea.staked, ea.locked, ea.cooldownUntil]).to.deep.equal([sa - SLASH_MINORITY, 0n, 0n]);
      expect([eb.staked, eb.locked, eb.cooldownUntil]).to.deep.equal([sb, 0n, 0n]);
      expect([ec.staked, ec.locked, ec.cooldownUntil]).to.deep.equal([
        sc - SLASH_TIMEOUT,
        0n,
        t + BigInt(COURT_PARAMS.jurorCooldown),
      ]);
      expect(await f.court.weightOf(c)).to.equal((sc - SLASH_TIMEOUT) / WEIGHT_UNIT);
      expect(await f.court.rewardsOf(b, await f.usdt.getAddress())).to.equal(CASE_FEE);
      expect(await f.court.rewardsOf(b, NATIVE)).to.equal(SLASH_MINORITY + SLASH_TIMEOUT);
      expect((await f.reputation.getRecord(a)).votesIncoherent).to.equal(1n);
      expect((await f.reputation.getRecord(b)).votesCoherent).to.equal(1n);
      expect((await f.reputation.getRecord(b)).votesIncoherent).to.equal(0n);
      expect((await f.reputation.getRecord(c)).votesIncoherent).to.equal(1n);
      // Slashed stake stays in the court as b's reward: held is unchanged.
      expect(await f.court.held(NATIVE)).to.equal(STAKES.reduce((x, y) => x + y, 0n));
      await expectSolvent(f);
    });

    it("rewards of a 7-juror round are pro rata to stake and add up exactly to fee + slashPot", async function () {
      const f = await loadFixture(appealDrawn);
      const jurors = f.jurors1;
      // Four P100, two P0, one silent: the lower median of [0, 0, 4, 4, 4, 4] is P100.
      const choices = [Choice.P100, Choice.P100, Choice.P0, Choice.P100, Choice.P0, Choice.P100, undefined];
      await vote(f, f.caseId, jurors, choices);
      await time.increaseTo((await f.court.getCase(f.caseId)).deadline + 1n);
      await f.court.advance(f.caseId);
      await revealAll(f, f.caseId, jurors, choices);
      const r = await f.court.getRound(f.caseId, 1n);
      expect([r.ruled, r.ruling, r.revealed]).to.deep.equal([true, BigInt(Choice.P100), 6n]);
      const stakes = await stakesOf(f, f.caseId, 1n, jurors);
      const coherent = jurors.map((_, i) => choices[i] === Choice.P100);
      const total = stakes.reduce((s, x, i) => (coherent[i] ? s + x : s), 0n);
      expect(r.stakeByChoice[Choice.P100]).to.equal(total);
      const pot = 2n * SLASH_MINORITY + SLASH_TIMEOUT;
      const usdt = await f.usdt.getAddress();
      const before = {
        fee: await Promise.all(jurors.map((j) => f.court.rewardsOf(j, usdt))),
        stake: await Promise.all(jurors.map((j) => f.court.rewardsOf(j, NATIVE))),
      };
      const tx = f.court.execute(f.caseId, 1n, 14n);
      let cumulative = 0n;
      let feeSum = 0n;
      let stakeSum = 0n;
      for (let i = 0; i < jurors.length; i++) {
        if (!coherent[i]) {
          const missed = choices[i] === undefined;
          await expect(tx)
            .to.emit(f.court, "JurorSlashed")
            .withArgs(f.caseId, 1n, jurors[i], missed ? SLASH_TIMEOUT : SLASH_MINORITY, missed, missed ? anyValue : 0n);
          continue;
        }
        const next = cumulative + stakes[i];
        const feeShare = share(f.cost, cumulative, next, total);
        const stakeShare = share(pot, cumulative, next, total);
        await expect(tx).to.emit(f.court, "JurorRewarded").withArgs(f.caseId, 1n, jurors[i], feeShare, stakeShare);
        expect((await f.court.rewardsOf(jurors[i], usdt)) - before.fee[i]).to.equal(feeShare);
        expect((await f.court.rewardsOf(jurors[i], NATIVE)) - before.stake[i]).to.equal(stakeShare);
        // Each share is within one unit of the exact pro-rata amount.
        expect(feeShare * total - f.cost * stakes[i]).to.be.lessThan(total);
        expect(f.cost * stakes[i] - feeShare * total).to.be.lessThan(total);
        feeSum += feeShare;
        stakeSum += stakeShare;
        cumulative = next;
      }
      expect(feeSum).to.equal(f.cost);
      expect(stakeSum).to.equal(pot);
      await expectSolvent(f);
    });

    it("an abandoned round's slashes go to the treasury's share (agent 0), claimed in the stake asset", async function () {
      const f = await loadFixture(commitPhase);
      await time.increaseTo(f.deadline + 1n);
      await f.court.advance(f.caseId);
      const t = await pin();
      const tx = f.court.execute(f.caseId, 0n, 6n);
      for (const j of f.jurors) {
        await expect(tx)
          .to.emit(f.court, "JurorSlashed")
          .withArgs(f.caseId, 0n, j, SLASH_TIMEOUT, true, t + BigInt(COURT_PARAMS.jurorCooldown));
      }
      await expect(tx).to.not.emit(f.court, "JurorRewarded");
      const pot = 3n * SLASH_TIMEOUT;
      expect((await f.court.getRound(f.caseId, 0n)).slashPot).to.equal(pot);
      expect(await f.court.rewardsOf(0n, NATIVE)).to.equal(pot);
      for (const j of f.jurors) expect((await f.court.getEvaluator(j)).locked).to.equal(0n);
      const claim = f.court.connect(f.stranger).claimRewards(0n, NATIVE);
      await expect(claim).to.emit(f.court, "RewardsClaimed").withArgs(0n, NATIVE, f.treasury.address, pot);
      await expect(claim).to.changeEtherBalances([f.treasury, f.court], [pot, -pot]);
      await expectSolvent(f);
      // The slashed jurors sit out their cooldown: the redraw seats the other evaluators.
      await fulfilRandomness(f);
      const redrawn = await drawJury(f, f.caseId, 300);
      expect(redrawn).to.have.length(3);
      for (const j of redrawn) expect(f.jurors).to.not.include(j);
    });

    it("an abandoned round in ERC-20 mode: the treasury's share is paid in the stake token", async function () {
      const f = await loadFixture(erc20Commit);
      await time.increaseTo((await f.court.getCase(f.caseId)).deadline + 1n);
      await f.court.advance(f.caseId);
      await f.court.execute(f.caseId, 0n, 6n);
      const okb = await f.okb.getAddress();
      const pot = 3n * SLASH_TIMEOUT;
      expect(await f.court.rewardsOf(0n, okb)).to.equal(pot);
      expect(await f.court.rewardsOf(0n, NATIVE)).to.equal(0n);
      await expect(f.court.connect(f.stranger).claimRewards(0n, okb)).to.changeTokenBalances(
        f.okb,
        [f.treasury, f.court],
        [pot, -pot],
      );
    });
  });
});

/** The ERC-20 court with a case whose jury is drawn: the Commit period. */
async function erc20Commit() {
  const f = await deployCourt({ erc20: true });
  const { taskId, caseId } = await openCase(f);
  await fulfilRandomness(f);
  const jurors = await drawJury(f, caseId);
  await f.court.passPhase();
  return { ...f, taskId, caseId, jurors };
}
