import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, mine, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import {
  deployCourt,
  openCase,
  drawJury,
  vote,
  revealAll,
  jurorSigner,
  stakeFor,
  OKB,
  Phase,
  Choice,
  MIN_STAKE,
  COURT_PARAMS,
  COURT_TIMING,
  ARBITRABLE_ROLE,
  CourtFixture,
  waitForStakingTime,
} from "../fixtures/court";
import {
  CourtReentrantReceiver__factory,
  EvaluatorStaking__factory,
  MockFeeOnTransferToken__factory,
  MockReentrantToken__factory,
  type EvaluatorStaking,
} from "../../typechain-types";

/**
 * Security of the court: the jury cannot be steered by stake changes once randomness is on its
 * way, the randomness path only accepts the coordinator / source and ignores late answers, a
 * juror whose wallet refuses payouts cannot block anything, payouts cannot be re-entered,
 * fee-on-transfer stake tokens are refused and dust stakes are never drawn.
 */

const BPS = 10_000n;
const word = (n: number) => BigInt(ethers.id(`court-security-word-${n}`));
const GUARD = ethers.id("ReentrancyGuardReentrantCall()").slice(0, 10);

// Evaluators #5..#12: #5..#9 staked 100 OKB, #10 unstaked, #11 with 5,000 OKB of which 4,990
// requested out, #12 staked 100 OKB.
const steeringPool = async () => {
  const f = await deployCourt({
    evaluators: 8,
    stake: [OKB(100), OKB(100), OKB(100), OKB(100), OKB(100), 0n, OKB(5_000), OKB(100)],
  });
  await f.court.connect(f.evaluators[6].signer).requestUnstake(f.evaluators[6].id, OKB(4_990));
  const { caseId } = await openCase(f);
  return { ...f, caseId };
};
const nativePool = () => deployCourt({ evaluators: 5 });
const dustPool = () =>
  deployCourt({ evaluators: 6, stake: [OKB(100), OKB(100), OKB(100), MIN_STAKE - 1n, 1n, MIN_STAKE] });
const twoEvaluators = () => deployCourt({ evaluators: 2 });
const bareEvaluators = () => deployCourt({ evaluators: 3, stake: 0n });

/** The JurorDrawn events of a transaction: [agentId, stake] per seat. */
async function drawnIn(court: EvaluatorStaking, tx: ContractTransactionResponse) {
  const receipt = (await tx.wait())!;
  const out: [bigint, bigint][] = [];
  for (const log of receipt.logs) {
    const parsed = court.interface.parseLog(log);
    if (parsed?.name === "JurorDrawn") out.push([parsed.args.agentId, parsed.args.stake]);
  }
  return out;
}

/** A court staking `token` (an ERC-20 of the test) on the fixture's registry, Reputation and VRF adapter. */
async function courtStaking(f: CourtFixture, token: string) {
  const [admin] = await ethers.getSigners();
  const juryLogic = await (await ethers.getContractFactory("JuryLogic")).deploy();
  const factory = await ethers.getContractFactory("EvaluatorStaking", {
    libraries: { JuryLogic: await juryLogic.getAddress() },
  });
  const impl = await factory.deploy();
  const init = impl.interface.encodeFunctionData("initialize", [
    admin.address,
    await f.registry.getAddress(),
    await f.reputation.getAddress(),
    await f.vrfSource.getAddress(),
    token,
    f.treasury.address,
    COURT_PARAMS,
    COURT_TIMING,
  ]);
  const proxy = await (await ethers.getContractFactory("ERC1967Proxy")).deploy(await impl.getAddress(), init);
  const court = EvaluatorStaking__factory.connect(await proxy.getAddress(), admin);
  await f.vrfSource.setConsumer(await court.getAddress());
  await f.reputation.grantRole(ethers.id("REPORTER_ROLE"), await court.getAddress());
  await court.grantRole(ARBITRABLE_ROLE, await f.escrow.getAddress());
  await f.escrow.setArbitrator(await court.getAddress());
  return court;
}

/** Three evaluators staking 100 of a re-entering ERC-20 in a court plugged into TaskEscrow. */
const reentrantTokenCourt = async () => {
  const f = await deployCourt({ evaluators: 3, stake: 0n });
  const token = await (await ethers.getContractFactory("MockReentrantToken")).deploy();
  const court = await courtStaking(f, await token.getAddress());
  for (const e of f.evaluators) {
    await token.mint(e.signer.address, OKB(100));
    await token.connect(e.signer).approve(await court.getAddress(), OKB(100));
    await court.connect(e.signer).stake(e.id, OKB(100));
  }
  return { ...f, court, token: MockReentrantToken__factory.connect(await token.getAddress(), f.admin) };
};

/** Two evaluators and a third one owned by a CourtReentrantReceiver contract, all staking 100 OKB. */
const contractJuror = async () => {
  const f = await deployCourt({ evaluators: 2 });
  const receiver = await (await ethers.getContractFactory("CourtReentrantReceiver")).deploy();
  const registry = await f.registry.getAddress();
  await receiver.execute(registry, 0, f.registry.interface.encodeFunctionData("register(string)", ["ipfs://contract"]));
  const id = await f.registry.agentCount();
  const court = await f.court.getAddress();
  await receiver.execute(court, OKB(100), f.court.interface.encodeFunctionData("stake", [id, OKB(100)]), {
    value: OKB(100),
  });
  return {
    ...f,
    receiver: CourtReentrantReceiver__factory.connect(await receiver.getAddress(), f.admin),
    contractId: id,
  };
};

describe("EvaluatorStaking security", function () {
  describe("stake changes after the randomness request do not change the jury", function () {
    type Change = (f: Awaited<ReturnType<typeof steeringPool>>, outsider: bigint) => Promise<void>;
    const changes: [string, Change][] = [
      [
        "new stake",
        async (f) => {
          const e = f.evaluators[5];
          await expect(stakeFor(f.court, f, e.signer, e.id, OKB(5_000), false))
            .to.emit(f.court, "Staked")
            .withArgs(e.id, e.signer.address, OKB(5_000), true);
        },
      ],
      [
        "top-up",
        async (f, outsider) => {
          const signer = jurorSigner(f, outsider);
          await expect(stakeFor(f.court, f, signer, outsider, OKB(5_000), false))
            .to.emit(f.court, "Staked")
            .withArgs(outsider, signer.address, OKB(5_000), true);
        },
      ],
      [
        "unstake request",
        async (f, outsider) => {
          const [phase] = await f.court.drawState();
          await expect(f.court.connect(jurorSigner(f, outsider)).requestUnstake(outsider, OKB(50)))
            .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
            .withArgs(phase);
          await expect(f.court.syncStake(outsider))
            .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
            .withArgs(phase);
        },
      ],
      [
        "cancelUnstake",
        async (f) => {
          const e = f.evaluators[6];
          await expect(f.court.connect(e.signer).cancelUnstake(e.id))
            .to.emit(f.court, "UnstakeCancelled")
            .withArgs(e.id, OKB(4_990));
          expect((await f.court.getEvaluator(e.id)).pending).to.equal(OKB(4_990));
        },
      ],
    ];

    for (const when of ["Generating", "Drawing"] as const) {
      for (const [name, change] of changes) {
        it(`${name} during ${when}: same jury, same stakes, same weights`, async function () {
          const f = await loadFixture(steeringPool);
          await waitForStakingTime(f.court);
          await f.court.requestRandomness();
          const [, , , requestId] = await f.court.drawState();
          const source = await f.vrfSource.getAddress();
          const snapshot = await takeSnapshot();
          // Reference run: the word alone.
          await f.coordinator.fulfillRandomWordsWithOverride(requestId, source, [word(1)]);
          const reference = await drawnIn(f.court, await f.court.draw(f.caseId, 100));
          expect(reference).to.have.length(3);
          const weights = await Promise.all(f.evaluators.map((e) => f.court.weightOf(e.id)));
          const total = await f.court.totalWeight();
          await snapshot.restore();

          const referenceIds = reference.map(([id]) => id);
          const outsider = f.evaluators.find((e) => e.id !== f.evaluators[5].id && !referenceIds.includes(e.id))!.id;
          if (when === "Generating") await change(f, outsider);
          await f.coordinator.fulfillRandomWordsWithOverride(requestId, source, [word(1)]);
          if (when === "Drawing") await change(f, outsider);
          expect(await f.court.totalWeight()).to.equal(total);
          for (let i = 0; i < f.evaluators.length; i++)
            expect(await f.court.weightOf(f.evaluators[i].id)).to.equal(weights[i]);
          const again = await drawnIn(f.court, await f.court.draw(f.caseId, 100));
          expect(again).to.deep.equal(reference);
        });
      }
    }

    it("a change of this size would change the jury in the Staking phase (the check can fail)", async function () {
      const f = await loadFixture(steeringPool);
      const e = f.evaluators[6];
      await f.court.connect(e.signer).cancelUnstake(e.id); // in Staking: back in the pool at once
      expect(await f.court.weightOf(e.id)).to.equal(OKB(5_000) / (await f.court.WEIGHT_UNIT()));
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const [, , , requestId] = await f.court.drawState();
      await f.coordinator.fulfillRandomWordsWithOverride(requestId, await f.vrfSource.getAddress(), [word(1)]);
      const jurors = (await drawnIn(f.court, await f.court.draw(f.caseId, 100))).map(([id]) => id);
      expect(jurors).to.include(e.id);
    });
  });

  describe("randomness path", function () {
    it("a second request in the same epoch reverts (Generating, then Drawing)", async function () {
      const f = await loadFixture(nativePool);
      await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      await expect(f.court.requestRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Generating);
      const [, , , requestId] = await f.court.drawState();
      await f.coordinator.fulfillRandomWords(requestId, await f.vrfSource.getAddress());
      await expect(f.court.requestRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingWrongPhase")
        .withArgs(Phase.Drawing);
      const [, epoch] = await f.court.drawState();
      expect(epoch).to.equal(1n);
    });

    it("only the coordinator fulfils the adapter, only the source feeds the court", async function () {
      const f = await loadFixture(nativePool);
      await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const [, , , requestId] = await f.court.drawState();
      await expect(f.vrfSource.connect(f.stranger).rawFulfillRandomWords(requestId, [word(1)]))
        .to.be.revertedWithCustomError(f.vrfSource, "OnlyCoordinatorCanFulfill")
        .withArgs(f.stranger.address, await f.coordinator.getAddress());
      await expect(f.court.connect(f.stranger).receiveRandomness(requestId, word(1)))
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingNotRandomnessSource")
        .withArgs(f.stranger.address);
      const [phase, , , pending] = await f.court.drawState();
      expect([phase, pending]).to.deep.equal([BigInt(Phase.Generating), requestId]);
    });

    it("after the fallback is scheduled, the late VRF answer is ignored and the block hash decides", async function () {
      const f = await loadFixture(nativePool);
      await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const [, epoch, phaseSince, requestId] = await f.court.drawState();
      const ready = phaseSince + BigInt(COURT_TIMING.randomnessTimeout);
      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(ready);
      await time.increaseTo(ready);
      const schedule = await f.court.fallbackRandomness();
      const target = BigInt(schedule.blockNumber!) + 20n;
      await expect(schedule).to.emit(f.court, "FallbackScheduled").withArgs(epoch, target);
      await expect(f.court.fallbackRandomness())
        .to.be.revertedWithCustomError(f.court, "EvaluatorStakingTooEarly")
        .withArgs(target + 1n);

      // The VRF answer arrives late: the adapter delivers it, the court ignores it.
      const late = f.coordinator.fulfillRandomWordsWithOverride(requestId, await f.vrfSource.getAddress(), [word(9)]);
      await expect(late).to.emit(f.court, "RandomnessIgnored").withArgs(requestId);
      await expect(late).to.emit(f.vrfSource, "RandomnessFulfilled").withArgs(requestId, word(9), true);
      await expect(late).not.to.emit(f.court, "RandomnessReceived");
      expect((await f.court.drawState())[0]).to.equal(Phase.Generating);

      await mine(20);
      const use = await f.court.fallbackRandomness();
      const hash = (await ethers.provider.getBlock(Number(target)))!.hash!;
      const expected = BigInt(
        ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256"], [hash, epoch])),
      );
      await expect(use).to.emit(f.court, "RandomnessReceived").withArgs(epoch, 0n, expected);
      expect((await f.court.drawState())[0]).to.equal(Phase.Drawing);
      // A stale delivery after drawing started is ignored too.
      await expect(f.vrfSource.redeliver(requestId))
        .to.be.revertedWithCustomError(f.vrfSource, "ChainlinkVRFSourceNothingToRedeliver")
        .withArgs(requestId);
    });
  });

  describe("a juror contract that refuses the native coin", function () {
    it("cannot block the ruling nor the other jurors' settlement and claims; its own claim fails alone", async function () {
      const f = await loadFixture(contractJuror);
      const { court, receiver, contractId, usdt } = f;
      const [a, b] = f.evaluators;
      await receiver.setMode(1, ethers.ZeroAddress, "0x"); // Revert
      const { taskId, caseId } = await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const [, , , requestId] = await f.court.drawState();
      await f.coordinator.fulfillRandomWordsWithOverride(requestId, await f.vrfSource.getAddress(), [word(3)]);
      const jurors = await drawJury(f, caseId);
      expect([...jurors].sort()).to.deep.equal([a.id, b.id, contractId].sort());
      await court.passPhase();
      // The contract and `a` vote 100%, `b` votes 0%: ruling 100%, `b` slashed 10% of its lock.
      const choiceOf = (j: bigint) => (j === b.id ? Choice.P0 : Choice.P100);
      for (const j of jurors) {
        const hash = await court.commitmentOf(caseId, 0, j, choiceOf(j), ethers.id(`salt-${j}`));
        if (j === contractId) {
          await receiver.execute(
            await court.getAddress(),
            0,
            court.interface.encodeFunctionData("commit", [caseId, j, hash]),
          );
        } else await court.connect(jurorSigner(f, j)).commit(caseId, j, hash);
      }
      for (const j of jurors) {
        const args = [caseId, j, choiceOf(j), ethers.id(`salt-${j}`)] as const;
        if (j === contractId) {
          await receiver.execute(await court.getAddress(), 0, court.interface.encodeFunctionData("reveal", [...args]));
        } else await court.connect(jurorSigner(f, j)).reveal(...args);
      }
      await time.increaseTo((await court.getCase(caseId)).deadline + 1n);
      await expect(court.advance(caseId))
        .to.emit(f.escrow, "Ruling")
        .withArgs(await court.getAddress(), caseId, 5n);
      expect((await f.escrow.getTask(taskId)).status).to.equal(10n); // Resolved
      await expect(court.execute(caseId, 0, 6)).to.emit(court, "JurorRewarded");
      const slash = (MIN_STAKE * BigInt(COURT_PARAMS.slashMinorityBps)) / BPS;
      const contractReward = await court.rewardsOf(contractId, ethers.ZeroAddress);
      const aReward = await court.rewardsOf(a.id, ethers.ZeroAddress);
      expect(contractReward + aReward).to.equal(slash);
      expect(contractReward).to.be.greaterThan(0n);

      // `a` claims both assets; the contract's native claim reverts, its USDT claim works.
      await expect(court.connect(a.signer).claimRewards(a.id, ethers.ZeroAddress)).to.changeEtherBalance(
        a.signer,
        aReward,
      );
      const usdtAddress = await usdt.getAddress();
      const aFee = await court.rewardsOf(a.id, usdtAddress);
      await expect(court.connect(a.signer).claimRewards(a.id, usdtAddress)).to.changeTokenBalance(usdt, a.signer, aFee);
      const claimNative = court.interface.encodeFunctionData("claimRewards", [contractId, ethers.ZeroAddress]);
      await expect(receiver.execute(await court.getAddress(), 0, claimNative))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingTransferFailed")
        .withArgs(await receiver.getAddress(), contractReward);
      expect(await court.rewardsOf(contractId, ethers.ZeroAddress)).to.equal(contractReward);
      const contractFee = await court.rewardsOf(contractId, usdtAddress);
      const claimUsdt = court.interface.encodeFunctionData("claimRewards", [contractId, usdtAddress]);
      await expect(receiver.execute(await court.getAddress(), 0, claimUsdt)).to.changeTokenBalance(
        usdt,
        receiver,
        contractFee,
      );
      expect(aFee + contractFee).to.equal(await court.getCase(caseId).then((c) => c.fee));
    });
  });

  describe("reentrancy", function () {
    it("a native receiver re-entering claimUnstake / claimRewards from its receive() is refused", async function () {
      const f = await loadFixture(contractJuror);
      const { court, receiver, contractId } = f;
      const courtAddress = await court.getAddress();
      const run = (data: string) => receiver.execute(courtAddress, 0, data);
      await run(court.interface.encodeFunctionData("requestUnstake", [contractId, OKB(40)]));
      await time.increase(COURT_TIMING.unstakeDelay);
      const claim = court.interface.encodeFunctionData("claimUnstake", [contractId]);
      for (const inner of [
        claim,
        court.interface.encodeFunctionData("claimRewards", [contractId, ethers.ZeroAddress]),
      ]) {
        const snapshot = await takeSnapshot();
        await receiver.setMode(2, courtAddress, inner); // Reenter
        const tx = run(claim);
        await expect(tx)
          .to.emit(court, "UnstakeClaimed")
          .withArgs(contractId, await receiver.getAddress(), OKB(40));
        await expect(tx).to.changeEtherBalances([receiver, court], [OKB(40), -OKB(40)]);
        await expect(tx).to.emit(receiver, "ReentryAttempted").withArgs(courtAddress, false, GUARD);
        expect(await receiver.reentries()).to.equal(1n);
        expect(await receiver.lastReentryReturnData()).to.equal(GUARD);
        const e = await court.getEvaluator(contractId);
        expect([e.staked, e.unstaking]).to.deep.equal([OKB(60), 0n]);
        expect(await court.held(ethers.ZeroAddress)).to.equal(OKB(260));
        await snapshot.restore();
      }
    });

    it("a stake token re-entering claimUnstake and claimRewards during its transfer is refused", async function () {
      const f = await loadFixture(reentrantTokenCourt);
      const { court, token } = f;
      const courtAddress = await court.getAddress();
      const tokenAddress = await token.getAddress();
      const [x, y, z] = f.evaluators;

      // claimRewards needs stake-token rewards: a case where `z` votes against the others.
      const { caseId } = await openCase({ ...f, court });
      await waitForStakingTime(court);
      await court.requestRandomness();
      const [, , , requestId] = await court.drawState();
      await f.coordinator.fulfillRandomWordsWithOverride(requestId, await f.vrfSource.getAddress(), [word(4)]);
      const g = { ...f, court } as unknown as CourtFixture;
      const jurors = await drawJury(g, caseId);
      await court.passPhase();
      const choices = jurors.map((j) => (j === z.id ? Choice.P0 : Choice.P50));
      await vote(g, caseId, jurors, choices);
      await revealAll(g, caseId, jurors, choices);
      await court.execute(caseId, 0, 6);
      const reward = await court.rewardsOf(x.id, tokenAddress);
      expect(reward).to.be.greaterThan(0n);

      await token.setReentry(courtAddress, court.interface.encodeFunctionData("claimRewards", [x.id, tokenAddress]));
      const claim = court.connect(x.signer).claimRewards(x.id, tokenAddress);
      await expect(claim).to.emit(token, "ReentryAttempted").withArgs(courtAddress, false, GUARD);
      await expect(claim).to.changeTokenBalances(token, [x.signer, court], [reward, -reward]);
      expect(await court.rewardsOf(x.id, tokenAddress)).to.equal(0n);

      await court.connect(y.signer).requestUnstake(y.id, OKB(50));
      await time.increase(COURT_TIMING.unstakeDelay);
      await token.setReentry(courtAddress, court.interface.encodeFunctionData("claimUnstake", [y.id]));
      const unstake = court.connect(y.signer).claimUnstake(y.id);
      await expect(unstake).to.emit(token, "ReentryAttempted").withArgs(courtAddress, false, GUARD);
      await expect(unstake).to.changeTokenBalances(token, [y.signer, court], [OKB(50), -OKB(50)]);
      expect(await token.balanceOf(courtAddress)).to.equal(await court.held(tokenAddress));
    });
  });

  describe("stake token and dust", function () {
    it("a fee-on-transfer stake token is refused", async function () {
      const f = await loadFixture(bareEvaluators);
      const fot = await (await ethers.getContractFactory("MockFeeOnTransferToken")).deploy(100);
      const court = await courtStaking(f, await fot.getAddress());
      const token = MockFeeOnTransferToken__factory.connect(await fot.getAddress(), f.admin);
      const [e] = f.evaluators;
      await token.mint(e.signer.address, OKB(100));
      await token.connect(e.signer).approve(await court.getAddress(), OKB(100));
      await expect(court.connect(e.signer).stake(e.id, OKB(100)))
        .to.be.revertedWithCustomError(court, "EvaluatorStakingTransferMismatch")
        .withArgs(await token.getAddress(), OKB(100), OKB(99));
      expect(await court.held(await token.getAddress())).to.equal(0n);
      expect(await token.balanceOf(await court.getAddress())).to.equal(0n);
    });

    it("stakes below minStake weigh nothing and are never drawn", async function () {
      const f = await loadFixture(dustPool);
      const dust = [f.evaluators[3], f.evaluators[4]];
      const exact = f.evaluators[5];
      for (const d of dust) expect(await f.court.weightOf(d.id)).to.equal(0n);
      expect(await f.court.weightOf(exact.id)).to.equal(MIN_STAKE / (await f.court.WEIGHT_UNIT()));
      expect(await f.court.totalWeight()).to.equal((OKB(300) + MIN_STAKE) / (await f.court.WEIGHT_UNIT()));
      const { caseId } = await openCase(f);
      await waitForStakingTime(f.court);
      await f.court.requestRandomness();
      const [, , , requestId] = await f.court.drawState();
      const source = await f.vrfSource.getAddress();
      const seen = new Set<bigint>();
      for (let i = 0; i < 25; i++) {
        const snapshot = await takeSnapshot();
        await f.coordinator.fulfillRandomWordsWithOverride(requestId, source, [word(100 + i)]);
        for (const [id] of await drawnIn(f.court, await f.court.draw(caseId, 100))) seen.add(id);
        await snapshot.restore();
      }
      for (const d of dust) expect(seen.has(d.id)).to.equal(false);
      expect(seen.size).to.equal(4); // the three 100 OKB evaluators and the one at exactly minStake

      // An evaluator unstaking below minStake leaves the tree.
      const f2 = await loadFixture(twoEvaluators);
      const [e] = f2.evaluators;
      await f2.court.connect(e.signer).requestUnstake(e.id, OKB(100) - MIN_STAKE + 1n);
      expect(await f2.court.weightOf(e.id)).to.equal(0n);
      expect(await f2.court.totalWeight()).to.equal(OKB(100) / (await f.court.WEIGHT_UNIT()));
    });
  });
});
