import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  deployCourt,
  openCase,
  jurorSigner,
  stakeFor,
  SALT,
  OKB,
  Phase,
  CaseStatus,
  Choice,
  MIN_STAKE,
  COURT_PARAMS,
  COURT_TIMING,
  CourtFixture,
  drawDeadline,
  waitForStakingTime,
} from "../fixtures/court";
import { Status, PROTOCOL_FEE_BPS } from "../fixtures/escrow";
import { usd } from "../fixtures/helpers";

/**
 * The court end to end with the real contracts (registry, Reputation, TaskEscrow, the Chainlink
 * VRF adapter on the coordinator mock), staking the native coin and an ERC-20:
 * task -> reject -> dispute -> VRF -> draw -> commit -> reveal -> ruling -> appeal -> new epoch ->
 * jury of 7 -> final ruling -> TaskEscrow pays; jurors settled, rewards claimed, stake unstaked.
 * Also a round nobody reveals (redrawn) and a case the pool cannot seat (waits for more stake).
 */

const BPS = 10_000n;
const STAKES = Array.from({ length: 9 }, (_, i) => OKB(100 + 10 * i));
const nativeCourt = () => deployCourt({ evaluators: 9, stake: STAKES });
const erc20Court = () => deployCourt({ erc20: true, evaluators: 9, stake: STAKES });
const redrawCourt = () => deployCourt({ evaluators: 7 });
const smallPool = () => deployCourt({ evaluators: 3, stake: [OKB(100), OKB(100), 0n] });

const word = (n: number) => BigInt(ethers.id(`court-e2e-word-${n}`));

/** The part of `pot` between two cumulative stakes (JuryLogic._share). */
const share = (pot: bigint, before: bigint, after: bigint, total: bigint) =>
  (pot * after) / total - (pot * before) / total;

/**
 * Requests the word of a new epoch (once the Staking phase lasted minStakingTime) and has the VRF
 * mock answer `w`; checks the events.
 */
async function randomness(f: CourtFixture, w: bigint, expectedEpoch: bigint, casesWaiting: bigint) {
  await waitForStakingTime(f.court);
  const tx = await f.court.requestRandomness();
  const [phase, epoch, , requestId] = await f.court.drawState();
  expect(phase).to.equal(Phase.Generating);
  expect(epoch).to.equal(expectedEpoch);
  await expect(tx).to.emit(f.court, "RandomnessRequested").withArgs(expectedEpoch, requestId, casesWaiting);
  await expect(tx).to.emit(f.court, "PhaseChanged").withArgs(Phase.Staking, Phase.Generating, expectedEpoch);
  const source = await f.vrfSource.getAddress();
  const fulfil = f.coordinator.fulfillRandomWordsWithOverride(requestId, source, [w]);
  await expect(fulfil).to.emit(f.court, "RandomnessReceived").withArgs(expectedEpoch, requestId, w);
  await expect(fulfil).to.emit(f.court, "PhaseChanged").withArgs(Phase.Generating, Phase.Drawing, expectedEpoch);
  await expect(fulfil).to.emit(f.vrfSource, "RandomnessFulfilled").withArgs(requestId, w, true);
  return requestId;
}

/** Draws the whole jury of the case's current round; checks every JurorDrawn against the pool. */
async function drawRound(f: CourtFixture, caseId: bigint, size: number) {
  const c = await f.court.getCase(caseId);
  const tx = await f.court.draw(caseId, 200);
  const r = await f.court.getRound(caseId, c.round);
  expect(r.seated).to.equal(size);
  const jurors = r.jurors.map((j) => BigInt(j));
  expect(new Set(jurors).size).to.equal(size);
  for (let seat = 0; seat < size; seat++) {
    const e = await f.court.getEvaluator(jurors[seat]);
    await expect(tx).to.emit(f.court, "JurorDrawn").withArgs(caseId, c.round, jurors[seat], seat, e.staked);
    expect((await f.court.getVote(caseId, c.round, jurors[seat])).stake).to.equal(e.staked);
  }
  const deadline = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + BigInt(COURT_PARAMS.commitPeriod);
  await expect(tx)
    .to.emit(f.court, "CaseStatusChanged")
    .withArgs(caseId, c.round, CaseStatus.Drawing, CaseStatus.Commit, deadline);
  return jurors;
}

async function commitAll(f: CourtFixture, caseId: bigint, jurors: bigint[], choices: (number | undefined)[]) {
  const round = (await f.court.getCase(caseId)).round;
  for (let i = 0; i < jurors.length; i++) {
    if (choices[i] === undefined) continue;
    const hash = await f.court.commitmentOf(caseId, round, jurors[i], choices[i]!, SALT(jurors[i]));
    await expect(f.court.connect(jurorSigner(f, jurors[i])).commit(caseId, jurors[i], hash))
      .to.emit(f.court, "VoteCommitted")
      .withArgs(caseId, round, jurors[i], hash);
  }
}

async function revealSome(f: CourtFixture, caseId: bigint, jurors: bigint[], choices: (number | undefined)[]) {
  const round = (await f.court.getCase(caseId)).round;
  for (let i = 0; i < jurors.length; i++) {
    if (choices[i] === undefined) continue;
    await expect(f.court.connect(jurorSigner(f, jurors[i])).reveal(caseId, jurors[i], choices[i]!, SALT(jurors[i])))
      .to.emit(f.court, "VoteRevealed")
      .withArgs(caseId, round, jurors[i], choices[i]!);
  }
}

async function latest() {
  return BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
}

/** Expected settlement of a ruled round: slashes (incoherent 10%, missed 20%) then pro-rata rewards. */
function settlement(
  jurors: bigint[],
  stakes: bigint[],
  committed: boolean[],
  revealed: (number | undefined)[],
  ruling: number,
  fee: bigint,
) {
  const slashes = new Map<bigint, { amount: bigint; missed: boolean }>();
  let pot = 0n;
  let coherentStake = 0n;
  jurors.forEach((j, i) => {
    const choice = revealed[i];
    if (choice === ruling) {
      coherentStake += stakes[i];
      return;
    }
    const missed = choice === undefined || !committed[i];
    const amount = (MIN_STAKE * BigInt(missed ? COURT_PARAMS.slashTimeoutBps : COURT_PARAMS.slashMinorityBps)) / BPS;
    slashes.set(j, { amount, missed });
    pot += amount;
  });
  const rewards = new Map<bigint, { fee: bigint; stake: bigint }>();
  let before = 0n;
  jurors.forEach((j, i) => {
    if (revealed[i] !== ruling) return;
    const after = before + stakes[i];
    rewards.set(j, { fee: share(fee, before, after, coherentStake), stake: share(pot, before, after, coherentStake) });
    before = after;
  });
  return { slashes, rewards, pot };
}

for (const erc20 of [false, true]) {
  describe(`Court end to end (${erc20 ? "ERC-20" : "native"} stake)`, function () {
    it("dispute -> jury of 3 -> appeal -> jury of 7 -> final ruling -> escrow split, settlements, claims, unstake", async function () {
      const f = await loadFixture(erc20 ? erc20Court : nativeCourt);
      const { court, usdt, escrow, reputation, alice, bob, treasury } = f;
      const courtAddress = await court.getAddress();
      const escrowAddress = await escrow.getAddress();
      const usdtAddress = await usdt.getAddress();
      const asset = erc20 ? await f.okb.getAddress() : ethers.ZeroAddress;
      const assetBalance = (who: string) => (erc20 ? f.okb.balanceOf(who) : ethers.provider.getBalance(who));
      const stakeOf = new Map<bigint, bigint>(f.evaluators.map((e, i) => [e.id, STAKES[i]]));
      const totalStake = STAKES.reduce((a, b) => a + b, 0n);
      expect(await court.stakeToken()).to.equal(asset);
      expect(await assetBalance(courtAddress)).to.equal(totalStake);
      expect(await court.held(asset)).to.equal(totalStake);
      for (const e of f.evaluators)
        expect(await court.weightOf(e.id)).to.equal(stakeOf.get(e.id)! / (await court.WEIGHT_UNIT()));

      // ---- task -> reject -> dispute: the client's deposit is the court's fee
      const price = usd(100);
      const deposit = (price * 500n) / BPS; // arbitrationFeeBps 5%
      const { taskId, caseId } = await openCase(f, price);
      expect(caseId).to.equal(1n);
      expect((await escrow.getTask(taskId)).status).to.equal(Status.Arbitration);
      const c0 = await court.getCase(caseId);
      expect(c0.arbitrable).to.equal(escrowAddress);
      expect(c0.status).to.equal(CaseStatus.Drawing);
      expect(c0.token).to.equal(usdtAddress);
      expect(c0.fee).to.equal(deposit);
      expect([c0.clientId, c0.providerId]).to.deep.equal([f.aliceId, f.bobId]);
      expect([c0.clientOwner, c0.providerOwner]).to.deep.equal([alice.address, bob.address]);
      expect(await usdt.balanceOf(courtAddress)).to.equal(deposit);
      expect(await court.held(usdtAddress)).to.equal(deposit);

      // ---- epoch 1: VRF, jury of 3
      await randomness(f, word(1), 1n, 1n);
      const jury0 = await drawRound(f, caseId, 3);
      const stakes0 = jury0.map((j) => stakeOf.get(j)!);
      await expect(court.passPhase()).to.emit(court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 1n);

      const choices0 = [Choice.P75, Choice.P75, Choice.P50];
      await commitAll(f, caseId, jury0, choices0);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Reveal);
      await revealSome(f, caseId, jury0.slice(0, 2), choices0.slice(0, 2));
      const lastReveal = court.connect(jurorSigner(f, jury0[2])).reveal(caseId, jury0[2], choices0[2], SALT(jury0[2]));
      await expect(lastReveal).to.emit(court, "RoundRuled").withArgs(caseId, 0n, Choice.P75, 3n);
      const appealDeadline0 = (await latest()) + BigInt(COURT_PARAMS.appealPeriod);
      await expect(lastReveal)
        .to.emit(court, "CaseStatusChanged")
        .withArgs(caseId, 0n, CaseStatus.Reveal, CaseStatus.Appeal, appealDeadline0);

      // ---- the client appeals, paying exactly appealCost in USDT
      const cost = await court.appealCost(caseId);
      expect(cost).to.equal((deposit * 7n * BigInt(COURT_PARAMS.appealFeeBps)) / (3n * BPS));
      expect(cost).to.equal(11_666_666n);
      await usdt.connect(alice).approve(courtAddress, cost);
      const appealTx = court.connect(alice).appeal(caseId, f.aliceId);
      await expect(appealTx).to.emit(court, "Appealed").withArgs(caseId, 1n, f.aliceId, alice.address, cost, 7n);
      await expect(appealTx).to.changeTokenBalances(usdt, [alice, court], [-cost, cost]);
      expect(await court.held(usdtAddress)).to.equal(deposit + cost);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);

      // ---- settle round 0 in two batches (Staking phase)
      // First pass (3 steps): penalties; second pass: rewards.
      const s0 = settlement(jury0, stakes0, [true, true, true], choices0, Choice.P75, deposit);
      expect(s0.pot).to.equal(OKB(1));
      const exec0a = court.execute(caseId, 0, 3);
      await expect(exec0a).to.emit(court, "JurorSlashed").withArgs(caseId, 0n, jury0[2], OKB(1), false, 0n);
      await expect(exec0a).to.emit(reputation, "VoteRecorded").withArgs(jury0[2], false);
      await expect(exec0a).not.to.emit(court, "JurorRewarded");
      expect((await court.getRound(caseId, 0)).cursor).to.equal(3n);
      const exec0b = court.execute(caseId, 0, 10);
      for (const j of [jury0[0], jury0[1]]) {
        const r = s0.rewards.get(j)!;
        await expect(exec0b).to.emit(court, "JurorRewarded").withArgs(caseId, 0n, j, r.fee, r.stake);
        await expect(exec0b).to.emit(reputation, "VoteRecorded").withArgs(j, true);
      }
      expect(s0.rewards.get(jury0[0])!.fee + s0.rewards.get(jury0[1])!.fee).to.equal(deposit);
      expect(s0.rewards.get(jury0[0])!.stake + s0.rewards.get(jury0[1])!.stake).to.equal(OKB(1));
      await expect(court.execute(caseId, 0, 1))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingRoundSettled")
        .withArgs(caseId, 0n);
      stakeOf.set(jury0[2], stakeOf.get(jury0[2])! - OKB(1));
      for (const j of jury0) {
        const e = await court.getEvaluator(j);
        expect(e.staked).to.equal(stakeOf.get(j)!);
        expect(e.locked).to.equal(0n);
        expect(await court.weightOf(j)).to.equal(stakeOf.get(j)! / (await court.WEIGHT_UNIT()));
      }

      // ---- epoch 2: jury of 7
      await randomness(f, word(2), 2n, 1n);
      const jury1 = await drawRound(f, caseId, 7);
      const stakes1 = jury1.map((j) => stakeOf.get(j)!);
      await court.passPhase();

      // 3 vote 50%, one 25%, one 100%, one never commits, one commits and never reveals.
      const commits1 = [Choice.P50, Choice.P50, Choice.P50, Choice.P25, Choice.P100, undefined, Choice.P50];
      const reveals1 = [Choice.P50, Choice.P50, Choice.P50, Choice.P25, Choice.P100, undefined, undefined];
      await commitAll(f, caseId, jury1, commits1);
      const commitDeadline = (await court.getCase(caseId)).deadline;
      await expect(court.advance(caseId))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(caseId, commitDeadline);
      await time.increaseTo(commitDeadline + 1n);
      const toReveal = await court.advance(caseId);
      await expect(toReveal)
        .to.emit(court, "CaseStatusChanged")
        .withArgs(
          caseId,
          1n,
          CaseStatus.Commit,
          CaseStatus.Reveal,
          (await latest()) + BigInt(COURT_PARAMS.revealPeriod),
        );
      await revealSome(f, caseId, jury1, reveals1);
      await time.increaseTo((await court.getCase(caseId)).deadline + 1n);
      const rule1 = court.advance(caseId);
      await expect(rule1).to.emit(court, "RoundRuled").withArgs(caseId, 1n, Choice.P50, 5n);
      const appealDeadline1 = (await latest()) + BigInt(COURT_PARAMS.appealPeriod);
      await expect(rule1)
        .to.emit(court, "CaseStatusChanged")
        .withArgs(caseId, 1n, CaseStatus.Reveal, CaseStatus.Appeal, appealDeadline1);
      const r1 = await court.getRound(caseId, 1);
      expect([r1.size, r1.committed, r1.revealed, r1.ruling, r1.ruled, r1.fee]).to.deep.equal([
        7n,
        6n,
        5n,
        2n,
        true,
        cost,
      ]);

      // ---- final ruling after the appeal window: TaskEscrow pays the exact split
      await expect(court.advance(caseId))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(caseId, appealDeadline1);
      await time.increaseTo(appealDeadline1 + 1n);
      const shareBps = BigInt(Choice.P50) * 2500n;
      const toProvider = (price * shareBps) / BPS;
      const protocolFee = (toProvider * PROTOCOL_FEE_BPS) / BPS;
      const depositToProvider = (deposit * shareBps) / BPS;
      const providerGets = toProvider - protocolFee + depositToProvider;
      const clientGets = price - toProvider + (deposit - depositToProvider);
      expect([providerGets, clientGets, protocolFee]).to.deep.equal([usd(52), usd(52.5), usd(0.5)]);
      const final = court.advance(caseId);
      await expect(final).to.emit(court, "FinalRuling").withArgs(caseId, escrowAddress, Choice.P50);
      await expect(final)
        .to.emit(escrow, "Ruling")
        .withArgs(courtAddress, caseId, Choice.P50 + 1);
      await expect(final)
        .to.emit(escrow, "TaskSettled")
        .withArgs(taskId, toProvider - protocolFee, price - toProvider, protocolFee);
      await expect(final)
        .to.emit(escrow, "DepositsReturned")
        .withArgs(taskId, depositToProvider, deposit - depositToProvider);
      await expect(final).to.changeTokenBalances(
        usdt,
        [alice, bob, escrow, court],
        [clientGets, providerGets, -(providerGets + clientGets), 0n],
      );
      expect((await escrow.getTask(taskId)).status).to.equal(Status.Resolved);
      expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Ruled);
      await expect(court.advance(caseId))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingDeadlineNotPassed")
        .withArgs(caseId, 0n);
      await expect(escrow.sweepFees(usdtAddress)).to.changeTokenBalances(
        usdt,
        [treasury, escrow],
        [protocolFee, -protocolFee],
      );
      expect(await usdt.balanceOf(escrowAddress)).to.equal(0n);

      // ---- settle round 1: 2 incoherent (10%), 2 missed (20% + cooldown), 3 coherent share fee and pot
      const s1 = settlement(
        jury1,
        stakes1,
        commits1.map((x) => x !== undefined),
        reveals1,
        Choice.P50,
        cost,
      );
      expect(s1.pot).to.equal(OKB(6));
      const execTime = (await latest()) + 10n;
      await time.setNextBlockTimestamp(execTime);
      const exec1 = court.execute(caseId, 1, 14);
      const cooldown = execTime + BigInt(COURT_PARAMS.jurorCooldown);
      for (const [j, s] of s1.slashes) {
        await expect(exec1)
          .to.emit(court, "JurorSlashed")
          .withArgs(caseId, 1n, j, s.amount, s.missed, s.missed ? cooldown : 0n);
        stakeOf.set(j, stakeOf.get(j)! - s.amount);
      }
      for (const [j, r] of s1.rewards)
        await expect(exec1).to.emit(court, "JurorRewarded").withArgs(caseId, 1n, j, r.fee, r.stake);
      let feeSum = 0n;
      let potSum = 0n;
      for (const r of s1.rewards.values()) [feeSum, potSum] = [feeSum + r.fee, potSum + r.stake];
      expect([feeSum, potSum]).to.deep.equal([cost, OKB(6)]);
      for (const j of jury1) {
        const e = await court.getEvaluator(j);
        expect(e.staked).to.equal(stakeOf.get(j)!);
        expect(e.locked).to.equal(0n);
        expect(e.cooldownUntil).to.equal(s1.slashes.get(j)?.missed ? cooldown : 0n);
      }

      // ---- Reputation: one vote recorded per seat
      const votes = new Map<bigint, [number, number]>();
      const count = (j: bigint, coherent: boolean) => {
        const v = votes.get(j) ?? [0, 0];
        v[coherent ? 0 : 1]++;
        votes.set(j, v);
      };
      jury0.forEach((j) => count(j, s0.rewards.has(j)));
      jury1.forEach((j) => count(j, s1.rewards.has(j)));
      for (const e of f.evaluators) {
        const rec = await reputation.getRecord(e.id);
        const [coherent, incoherent] = votes.get(e.id) ?? [0, 0];
        expect([rec.votesCoherent, rec.votesIncoherent]).to.deep.equal([BigInt(coherent), BigInt(incoherent)]);
      }

      // ---- claims: USDT and the stake asset to the agents' wallets, exact deltas
      const expected = new Map<bigint, { fee: bigint; stake: bigint }>();
      for (const s of [s0, s1]) {
        for (const [j, r] of s.rewards) {
          const prev = expected.get(j) ?? { fee: 0n, stake: 0n };
          expected.set(j, { fee: prev.fee + r.fee, stake: prev.stake + r.stake });
        }
      }
      for (const e of f.evaluators) {
        const want = expected.get(e.id) ?? { fee: 0n, stake: 0n };
        expect(await court.rewardsOf(e.id, usdtAddress)).to.equal(want.fee);
        expect(await court.rewardsOf(e.id, asset)).to.equal(want.stake);
        if (want.fee === 0n) {
          await expect(court.connect(e.signer).claimRewards(e.id, usdtAddress))
            .to.be.revertedWithCustomError(court, "EvaluatorStakingNothingToClaim")
            .withArgs(e.id, usdtAddress);
          continue;
        }
        const claimFee = court.connect(e.signer).claimRewards(e.id, usdtAddress);
        await expect(claimFee).to.emit(court, "RewardsClaimed").withArgs(e.id, usdtAddress, e.signer.address, want.fee);
        await expect(claimFee).to.changeTokenBalances(usdt, [e.signer, court], [want.fee, -want.fee]);
        const claimStake = court.connect(e.signer).claimRewards(e.id, asset);
        await expect(claimStake).to.emit(court, "RewardsClaimed").withArgs(e.id, asset, e.signer.address, want.stake);
        if (erc20) await expect(claimStake).to.changeTokenBalances(f.okb, [e.signer, court], [want.stake, -want.stake]);
        else await expect(claimStake).to.changeEtherBalances([e.signer, court], [want.stake, -want.stake]);
      }
      expect(await usdt.balanceOf(courtAddress)).to.equal(0n);
      expect(await court.held(usdtAddress)).to.equal(0n);
      expect(await court.rewardsOf(0, asset)).to.equal(0n);
      expect(await assetBalance(courtAddress)).to.equal(totalStake - OKB(7));
      expect(await court.held(asset)).to.equal(totalStake - OKB(7));

      // ---- unstake -> claim after the delay
      const leaver = f.evaluators.find((e) => e.id === jury1[0])!;
      const amount = stakeOf.get(leaver.id)!;
      const requestTime = (await latest()) + 5n;
      await time.setNextBlockTimestamp(requestTime);
      const unstakeAt = requestTime + BigInt(COURT_TIMING.unstakeDelay);
      await expect(court.connect(leaver.signer).requestUnstake(leaver.id, amount))
        .to.emit(court, "UnstakeRequested")
        .withArgs(leaver.id, amount, amount, unstakeAt);
      expect(await court.weightOf(leaver.id)).to.equal(0n);
      await expect(court.connect(leaver.signer).claimUnstake(leaver.id))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingUnstakeNotReady")
        .withArgs(leaver.id, unstakeAt);
      await time.increaseTo(unstakeAt);
      const claim = court.connect(leaver.signer).claimUnstake(leaver.id);
      await expect(claim).to.emit(court, "UnstakeClaimed").withArgs(leaver.id, leaver.signer.address, amount);
      if (erc20) await expect(claim).to.changeTokenBalances(f.okb, [leaver.signer, court], [amount, -amount]);
      else await expect(claim).to.changeEtherBalances([leaver.signer, court], [amount, -amount]);
      const e = await court.getEvaluator(leaver.id);
      expect([e.staked, e.unstaking, e.unstakeAt]).to.deep.equal([0n, 0n, 0n]);
      expect(await court.held(asset)).to.equal(totalStake - OKB(7) - amount);
      expect(await assetBalance(courtAddress)).to.equal(totalStake - OKB(7) - amount);
    });
  });
}

describe("Court end to end: redraws and waiting cases", function () {
  it("a round nobody reveals is redrawn with the same size and fee; the absent jurors' slashes go to the treasury", async function () {
    const f = await loadFixture(redrawCourt);
    const { court, escrow, usdt, treasury, stranger } = f;
    const { taskId, caseId } = await openCase(f);
    const fee = usd(5);
    await randomness(f, word(10), 1n, 1n);
    const jury0 = await drawRound(f, caseId, 3);
    await court.passPhase();
    await commitAll(f, caseId, jury0, [Choice.P0, Choice.P100, Choice.P50]);
    const revealDeadline = (await court.getCase(caseId)).deadline;
    await time.increaseTo(revealDeadline + 1n);
    const abandon = court.advance(caseId);
    await expect(abandon).to.emit(court, "RoundAbandoned").withArgs(caseId, 0n);
    await expect(abandon)
      .to.emit(court, "CaseStatusChanged")
      .withArgs(caseId, 1n, CaseStatus.Reveal, CaseStatus.Drawing, await drawDeadline(abandon));
    const r0 = await court.getRound(caseId, 0);
    const r1 = await court.getRound(caseId, 1);
    expect([r0.abandoned, r0.ruled, r0.fee]).to.deep.equal([true, false, 0n]);
    expect([r1.size, r1.fee, r1.seated]).to.deep.equal([3n, fee, 0n]);
    expect((await court.drawState())[4]).to.equal(1n); // pendingCases

    // Settling the abandoned round: every juror missed the reveal (20% + cooldown); the pot is the protocol's.
    const execTime = (await latest()) + 10n;
    await time.setNextBlockTimestamp(execTime);
    const exec = court.execute(caseId, 0, 6);
    const missed = (MIN_STAKE * BigInt(COURT_PARAMS.slashTimeoutBps)) / BPS;
    for (const j of jury0) {
      await expect(exec)
        .to.emit(court, "JurorSlashed")
        .withArgs(caseId, 0n, j, missed, true, execTime + BigInt(COURT_PARAMS.jurorCooldown));
    }
    await expect(exec).not.to.emit(court, "JurorRewarded");
    expect(await court.rewardsOf(0, ethers.ZeroAddress)).to.equal(3n * missed);
    const toTreasury = court.connect(stranger).claimRewards(0, ethers.ZeroAddress);
    await expect(toTreasury)
      .to.emit(court, "RewardsClaimed")
      .withArgs(0n, ethers.ZeroAddress, treasury.address, 3n * missed);
    await expect(toTreasury).to.changeEtherBalances([treasury, court], [3n * missed, -3n * missed]);

    // The redraw (next epoch) never seats the cooled-down jurors.
    await randomness(f, word(11), 2n, 1n);
    const jury1 = await drawRound(f, caseId, 3);
    for (const j of jury1) expect(jury0).not.to.include(j);
    await court.passPhase();
    const all = [Choice.P100, Choice.P100, Choice.P100];
    await commitAll(f, caseId, jury1, all);
    await revealSome(f, caseId, jury1, all);
    await time.increaseTo((await court.getCase(caseId)).deadline + 1n);
    const providerGets = usd(100) - (usd(100) * PROTOCOL_FEE_BPS) / BPS + fee;
    await expect(court.advance(caseId)).to.changeTokenBalances(usdt, [f.bob, f.alice], [providerGets, 0n]);
    expect((await escrow.getTask(taskId)).status).to.equal(Status.Resolved);
    await court.execute(caseId, 1, 6);
    let paid = 0n;
    for (const j of jury1) paid += await court.rewardsOf(j, await usdt.getAddress());
    expect(paid).to.equal(fee);
  });

  it("a case the pool cannot seat waits past maxDrawingTime and is drawn in the next epoch once stake arrives", async function () {
    const f = await loadFixture(smallPool);
    const { court } = f;
    const [a, b, late] = f.evaluators;
    expect(await court.weightOf(late.id)).to.equal(0n);
    const { caseId } = await openCase(f);
    await randomness(f, word(20), 1n, 1n);
    expect(await court.draw.staticCall(caseId, 50)).to.equal(2n);
    await court.draw(caseId, 50);
    const r = await court.getRound(caseId, 0);
    expect(r.jurors.map((j) => BigInt(j)).sort()).to.deep.equal([a.id, b.id].sort());
    expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Drawing);

    // New stake during the Drawing phase waits as pending.
    await expect(stakeFor(court, f, late.signer, late.id, OKB(100), false))
      .to.emit(court, "Staked")
      .withArgs(late.id, late.signer.address, OKB(100), true);
    expect((await court.getEvaluator(late.id)).pending).to.equal(OKB(100));
    expect(await court.weightOf(late.id)).to.equal(0n);

    const [, , phaseSince] = await court.drawState();
    const ready = phaseSince + BigInt(COURT_TIMING.maxDrawingTime);
    await expect(court.passPhase()).to.be.revertedWithCustomError(court, "EvaluatorStakingTooEarly").withArgs(ready);
    await time.increaseTo(ready);
    await expect(court.passPhase()).to.emit(court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 1n);
    const [phase, , , , pendingCases, casesThisEpoch] = await court.drawState();
    expect([phase, pendingCases, casesThisEpoch]).to.deep.equal([BigInt(Phase.Staking), 1n, 0n]);
    await expect(court.draw(caseId, 10))
      .to.be.revertedWithCustomError(court, "EvaluatorStakingWrongPhase")
      .withArgs(Phase.Staking);

    await expect(court.syncStake(late.id))
      .to.emit(court, "StakeSynced")
      .withArgs(late.id, OKB(100), OKB(100) / (await court.WEIGHT_UNIT()));
    await randomness(f, word(21), 2n, 1n);
    const jury = await court.getRound(caseId, 0);
    expect(jury.seated).to.equal(2n);
    const tx = court.draw(caseId, 50);
    await expect(tx).to.emit(court, "JurorDrawn").withArgs(caseId, 0n, late.id, 2n, OKB(100));
    await expect(tx).to.emit(court, "CaseStatusChanged");
    const full = await court.getRound(caseId, 0);
    expect(full.jurors.map((j) => BigInt(j)).sort()).to.deep.equal([a.id, b.id, late.id].sort());
    expect((await court.getCase(caseId)).status).to.equal(CaseStatus.Commit);
    await expect(court.passPhase()).to.emit(court, "PhaseChanged").withArgs(Phase.Drawing, Phase.Staking, 2n);
  });
});
