import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import hre from "hardhat";
import { ErrorFragment, Interface, ZeroAddress } from "ethers";
import { type SnapshotRestorer, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { type Context, formatTimestamp, getContext } from "../../tasks/lib/context";
import { SENTENCES, errorInterface, explain } from "../../tasks/lib/errors";
import { MockStablecoin__factory } from "../../typechain-types";
import { capture, run, json, failure } from "../fixtures/tasks";

const { ethers } = hre;

const usdt = (n: string) => ethers.parseUnits(n, 6);
const okb = (n: string) => ethers.parseEther(n);
const TX = /^0x[0-9a-f]{64}$/;
const HOUR = 3_600;
/** Evaluators are owned by these local accounts (1 and 2 own the client and the provider). */
const EVALUATOR_SIGNERS = [10, 11, 12, 13, 14];

describe("Court tasks (EvaluatorStaking CLI) @cli", function () {
  let ctx: Context;
  let signers: Awaited<ReturnType<typeof ethers.getSigners>>;
  let snapshot: SnapshotRestorer;
  let client: bigint;
  let provider: bigint;
  /** Evaluator agent id -> index of the account that owns it. */
  const owners = new Map<bigint, number>();
  let evaluators: bigint[];
  let saltDir: string;

  const court = () => ctx.court!;
  const from = (agentId: bigint) => String(owners.get(agentId));
  const token = () => MockStablecoin__factory.connect(ctx.addresses.tokens.USDT!, signers[0]);

  before(async function () {
    signers = await ethers.getSigners();
    // A deployment of our own, with the court plugged in (other suites may have swapped the arbitrator).
    ctx = await getContext(hre, undefined, { fresh: true });
    const { chainId } = await ethers.provider.getNetwork();
    saltDir = path.join(hre.config.paths.root, ".court-salts", chainId.toString(), ctx.addresses.court!);
    fs.rmSync(saltDir, { recursive: true, force: true });
    const register = async (signer: number) =>
      (await run<{ agentId: bigint }>("agent:register", { uri: "ipfs://agent.json", from: String(signer) })).agentId;
    client = await register(1);
    provider = await register(2);
    evaluators = [];
    for (const i of EVALUATOR_SIGNERS) {
      const id = await register(i);
      owners.set(id, i);
      evaluators.push(id);
      await run("evaluator:stake", { agent: id, amount: "100", from: String(i) });
    }
    for (const i of [1, 2]) await token().mint(signers[i].address, usdt("10000"));
    snapshot = await takeSnapshot();
  });

  beforeEach(async function () {
    // Case ids repeat after the snapshot is restored: start every test without salt files.
    await snapshot.restore();
    fs.rmSync(saltDir, { recursive: true, force: true });
  });

  after(function () {
    fs.rmSync(saltDir, { recursive: true, force: true });
  });

  /** A 100 USDT task delivered, rejected and disputed by both parties: its case waits for a jury. */
  async function disputedTask(): Promise<{ taskId: bigint; caseId: bigint }> {
    const created = await run<{ taskId: bigint }>("task:create", { client, provider, budget: "100", from: "1" });
    const taskId = created.taskId;
    await run("task:accept", { task: taskId, from: "2" });
    await run("task:submit", { task: taskId, uri: "ipfs://deliverable", from: "2" });
    await run("task:reject", { task: taskId, from: "1" });
    await run("task:dispute", { task: taskId, from: "2" });
    await run("task:dispute", { task: taskId, from: "1" });
    return { taskId, caseId: (await ctx.escrow.getDispute(taskId)).disputeId };
  }

  /** Randomness requested and fulfilled, the jury drawn and the draw phase over; returns the jurors. */
  async function seated(caseId: bigint): Promise<bigint[]> {
    await time.increase(HOUR); // minStakingTime
    await run("dispute:advance", { case: caseId });
    await run("vrf:fulfill");
    await run("dispute:advance", { case: caseId });
    await run("dispute:advance", { case: caseId });
    return (await court().getRound(caseId, 0)).jurors.map((j) => BigInt(j));
  }

  describe("plumbing", function () {
    it("errors.ts has a sentence for every EvaluatorStaking and ChainlinkVRFSource error", async function () {
      for (const name of ["IEvaluatorStaking", "ChainlinkVRFSource"]) {
        const { abi } = await hre.artifacts.readArtifact(name);
        const errors = new Interface(abi).fragments.filter((f): f is ErrorFragment => f.type === "error");
        expect(errors.length).to.be.greaterThan(2);
        expect(errors.filter((e) => !SENTENCES[e.name]).map((e) => e.name)).to.deep.equal([]);
      }
      const iface = errorInterface();
      const words = { decimals: 18, symbol: "OKB" };
      const say = (name: string, args: unknown[]) => explain({ data: iface.encodeErrorResult(name, args) }, words);
      expect(say("EvaluatorStakingInsufficientFreeStake", [7n, okb("50"), okb("12.5")])).to.equal(
        "Refused: agent #7 has 12.50 OKB of free stake (staked and not locked by jury seats), less than the 50.00 OKB asked.",
      );
      expect(say("EvaluatorStakingWrongPhase", [1n])).to.match(/^Refused: the court is in its Generating phase/);
      expect(say("EvaluatorStakingWrongStatus", [3n, 4n])).to.equal(
        "Refused: case #3 is in its appeal period, when this is not possible.",
      );
      expect(say("EvaluatorStakingTooEarly", [1_900_000_000n])).to.equal(
        "Refused: too early; this works only after 2030-03-17T17:46:40Z.",
      );
      expect(say("EvaluatorStakingTooEarly", [120n])).to.equal("Refused: too early; this works from block 120 on.");
      expect(say("EvaluatorStakingNothingToClaim", [0n, ZeroAddress])).to.equal(
        "Refused: the protocol has no rewards to claim in the native coin.",
      );
      expect(say("ChainlinkVRFSourceNotConsumer", [signers[3].address])).to.equal(
        `Refused: only the court may ask the VRF adapter for randomness, not ${signers[3].address}.`,
      );
    });
  });

  describe("evaluators", function () {
    it("evaluator:stake and evaluator:show --json", async function () {
      const agent = evaluators[0];
      const staked = await json("evaluator:stake", { agent, amount: "25.5", from: from(agent) });
      const weightUnit = await court().WEIGHT_UNIT();
      const total = okb("125.5");
      expect(staked).to.deep.equal({
        agentId: `${agent}`,
        amount: okb("25.5").toString(),
        amountText: "25.50 OKB",
        asset: "OKB",
        approved: false,
        pending: false,
        staked: total.toString(),
        stakedText: "125.50 OKB",
        weight: (total / weightUnit).toString(),
        events: [
          `Agent #${agent} staked 25.50 OKB.`,
          `Agent #${agent} has 125.50 OKB in the pool (weight ${total / weightUnit}).`,
        ],
        tx: staked.tx,
      });
      expect(staked.tx).to.match(TX);
      expect(await ethers.provider.getBalance(ctx.addresses.court!)).to.equal(okb("525.5"));

      const shown = await json("evaluator:show", { agent });
      expect(shown).to.deep.equal({
        agentId: `${agent}`,
        asset: "OKB",
        stakeToken: ZeroAddress,
        staked: total.toString(),
        stakedText: "125.50 OKB",
        locked: "0",
        lockedText: "0.00 OKB",
        free: total.toString(),
        freeText: "125.50 OKB",
        pending: "0",
        pendingText: "0.00 OKB",
        unstaking: "0",
        unstakingText: "0.00 OKB",
        unstakeAt: "0",
        unstakeAtText: "-",
        claimable: false,
        weight: (total / weightUnit).toString(),
        cooldownUntil: "0",
        cooldownText: "none",
        rewards: [
          { asset: "OKB", address: ZeroAddress, amount: "0", amountText: "0.00 OKB" },
          { asset: "USDT", address: ctx.addresses.tokens.USDT, amount: "0", amountText: "0.00 USDT" },
          { asset: "USDG", address: ctx.addresses.tokens.USDG, amount: "0", amountText: "0.00 USDG" },
        ],
        votes: { coherent: "0", incoherent: "0" },
      });
      const { out } = await capture(() => hre.run("evaluator:show", { agent }));
      expect(out).to.contain(`Evaluator #${agent} (stake in OKB)`);
      expect(out).to.match(/staked\s+│ 125\.50 OKB/);
      expect(out).to.not.contain("{");
    });

    it("evaluator:unstake, --cancel, and evaluator:claim after the cooldown", async function () {
      const agent = evaluators[1];
      const owner = from(agent);
      const requested = await json("evaluator:unstake", { agent, amount: "40", from: owner });
      const at = (await court().getEvaluator(agent)).unstakeAt;
      expect(requested).to.deep.equal({
        agentId: `${agent}`,
        action: "requested",
        amount: okb("40").toString(),
        amountText: "40.00 OKB",
        staked: okb("60").toString(),
        stakedText: "60.00 OKB",
        unstaking: okb("40").toString(),
        unstakingText: "40.00 OKB",
        unstakeAt: at.toString(),
        unstakeAtText: formatTimestamp(at),
        events: [
          `Agent #${agent}: 40.00 OKB leaves the pool; 40.00 OKB claimable from ${formatTimestamp(at)}.`,
          `Agent #${agent} has 60.00 OKB in the pool (weight ${okb("60") / (await court().WEIGHT_UNIT())}).`,
        ],
        tx: requested.tx,
      });
      expect(await failure("evaluator:claim", { agent, from: owner })).to.equal(
        `Refused: agent #${agent}'s unstaked amount can be claimed from ${formatTimestamp(at)}, not before.`,
      );
      const cancelled = await json("evaluator:unstake", { agent, cancel: true, from: owner });
      expect(cancelled).to.deep.include({
        action: "cancelled",
        amountText: "40.00 OKB",
        stakedText: "100.00 OKB",
        unstaking: "0",
        unstakeAtText: "-",
      });
      expect(await failure("evaluator:unstake", { agent, cancel: true, from: owner })).to.equal(
        `Refused: agent #${agent} has no open unstake request.`,
      );
      expect(await failure("evaluator:unstake", { agent, amount: "500", from: owner })).to.equal(
        `Refused: agent #${agent} has 100.00 OKB of free stake (staked and not locked by jury seats), less than the 500.00 OKB asked.`,
      );

      // All free stake by default, then claimed once the 7-day cooldown passed.
      await run("evaluator:unstake", { agent, from: owner });
      await time.increase(7 * 86_400);
      const wallet = signers[Number(owner)].address;
      const before = await ethers.provider.getBalance(wallet);
      expect(await failure("evaluator:claim", { agent, from: "5" })).to.match(
        new RegExp(`^Refused: the signer \\(0x.*\\) may not act for agent #${agent}:`),
      );
      const mine = await json("evaluator:claim", { agent, from: owner });
      expect(mine).to.deep.equal({
        agentId: `${agent}`,
        kind: "unstake",
        claims: [
          {
            asset: "OKB",
            address: ZeroAddress,
            amount: okb("100").toString(),
            amountText: "100.00 OKB",
            to: wallet,
            tx: mine.claims[0].tx,
          },
        ],
      });
      const receipt = await ethers.provider.getTransactionReceipt(mine.claims[0].tx);
      expect(await ethers.provider.getBalance(wallet)).to.equal(
        before + okb("100") - receipt!.gasUsed * receipt!.gasPrice,
      );
      expect(await failure("evaluator:claim", { agent, rewards: "all", from: owner })).to.equal(
        `Agent #${agent} has no rewards to claim.`,
      );
      expect(await failure("evaluator:claim", { agent, rewards: "USDT", from: owner })).to.equal(
        `Refused: agent #${agent} has no rewards to claim in USDT.`,
      );
    });

    it("staking for someone else's agent, or nothing, fails with sentences", async function () {
      const agent = evaluators[2];
      expect(await failure("evaluator:stake", { agent, amount: "10", from: "5" })).to.equal(
        `Refused: the signer (${signers[5].address.slice(0, 6)}…${signers[5].address.slice(-4)}) may not act for ` +
          `agent #${agent}: it is neither the agent's owner, its wallet nor an active operator.`,
      );
      expect(await failure("evaluator:stake", { agent, amount: "0", from: from(agent) })).to.equal(
        "Refused: an amount of zero.",
      );
    });
  });

  describe("disputes", function () {
    it("the whole case through the tasks: advance, vrf:fulfill, commit, reveal, final ruling, execute, rewards", async function () {
      const { taskId, caseId } = await disputedTask();
      const waiting = await json("dispute:show", { task: taskId });
      // In the Drawing status the deadline is the draw timeout (7 days after the dispute opened).
      const drawTimeout = (await court().getCase(caseId)).deadline;
      expect(waiting).to.deep.include({
        caseId: `${caseId}`,
        taskId: `${taskId}`,
        status: "Drawing",
        statusMeaning: "waits for its jury",
        phase: "Staking",
        round: "0",
        deadline: `${drawTimeout}`,
        deadlineWords: "in 7 days",
        deadlinePassed: false,
        clientId: `${client}`,
        providerId: `${provider}`,
        token: "USDT",
        fee: usdt("5").toString(),
        feeText: "5.00 USDT",
        jurySize: "3",
        seated: "0",
        jurors: [],
        appealable: false,
        appealCostText: "11.666666 USDT",
      });
      expect(await failure("vrf:fulfill", {})).to.equal(
        "The court is not waiting for randomness (phase Staking, epoch 0): nothing to fulfil.",
      );

      // Randomness only after minStakingTime (1 hour) in the Staking phase.
      expect(await failure("dispute:advance", { case: caseId })).to.match(
        new RegExp(
          `^Nothing to do for case #${caseId} now: it waits for a draw \\(randomness can be requested in \\d+ minutes?( \\d+ seconds?)?\\)\\.$`,
        ),
      );
      await time.increase(HOUR);
      const requested = await json("dispute:advance", { case: caseId });
      expect(requested).to.deep.equal({
        caseId: `${caseId}`,
        action: "requestRandomness",
        description: "asked for the random word of the next draw",
        status: "Drawing",
        phase: "Generating",
        events: [
          "The court moves from Staking to Generating (epoch 1).",
          `Randomness requested for epoch 1 (request ${(await court().drawState())[3]}) for 1 waiting case(s).`,
        ],
        tx: requested.tx,
      });
      expect(await failure("dispute:advance", { case: caseId })).to.match(
        new RegExp(
          `^Nothing to do for case #${caseId} now: it waits for the random word of request \\d+ \\(on a local network: vrf:fulfill\\)\\.$`,
        ),
      );
      const requestId = (await court().drawState())[3];
      const fulfilled = await json("vrf:fulfill", { word: "12345" });
      expect(fulfilled).to.deep.equal({
        epoch: "1",
        requestId: requestId.toString(),
        word: "12345",
        delivered: true,
        phase: "Drawing",
        events: [
          "The random word of epoch 1 arrived (request " + requestId + "): juries can be drawn.",
          "The court moves from Generating to Drawing (epoch 1).",
        ],
        tx: fulfilled.tx,
      });

      const drawn = await json("dispute:advance", { case: caseId });
      const jurors = (await court().getRound(caseId, 0)).jurors.map((j) => BigInt(j));
      expect(jurors).to.have.length(3);
      const deadline = (await court().getCase(caseId)).deadline;
      expect(drawn).to.deep.include({ action: "draw", status: "Commit", phase: "Drawing" });
      expect(drawn.events.filter((e: string) => e.startsWith("Seat"))).to.deep.equal(
        jurors.map((j, i) => `Seat ${i + 1}: juror #${j}, with 100.00 OKB at stake.`),
      );
      expect(drawn.events.at(-1)).to.equal(
        `Case #${caseId}, round 0: Drawing → Commit, until ${formatTimestamp(deadline)}.`,
      );
      const passed = await json("dispute:advance", { case: caseId });
      expect(passed).to.deep.include({ action: "passPhase", status: "Commit", phase: "Staking" });

      // Votes: 75%, 75%, 50%. Each salt goes to its own file, and the reveal reads it back.
      const choices = ["75%", "3", "50%"];
      for (const [i, juror] of jurors.entries()) {
        const committed = await json("dispute:commit", {
          case: caseId,
          juror,
          choice: choices[i],
          from: from(juror),
        });
        const file = path.join(saltDir, `${caseId}-0-${juror}.json`);
        const saved = JSON.parse(fs.readFileSync(file, "utf8"));
        expect(saved.commitment).to.equal(await court().commitmentOf(caseId, 0, juror, saved.choice, saved.salt));
        expect(committed).to.deep.equal({
          caseId: `${caseId}`,
          round: "0",
          jurorId: `${juror}`,
          choice: i === 2 ? 2 : 3,
          share: i === 2 ? "50%" : "75%",
          commitment: saved.commitment,
          saltFile: path.relative(process.cwd(), file),
          status: i === 2 ? "Reveal" : "Commit",
          events: committed.events,
          tx: committed.tx,
        });
        expect(committed.events[0]).to.equal(`Juror #${juror} committed its vote.`);
        expect((await court().getVote(caseId, 0, juror)).commitHash).to.equal(saved.commitment);
      }
      const shown = await json("dispute:show", { case: caseId });
      expect(shown.jurors).to.deep.equal(
        jurors.map((j) => ({
          agentId: `${j}`,
          stake: okb("100").toString(),
          stakeText: "100.00 OKB",
          committed: true,
          revealed: false,
        })),
      );
      for (const [i, juror] of jurors.entries()) {
        const revealed = await json("dispute:reveal", { case: caseId, juror, from: from(juror) });
        expect(revealed).to.deep.include({
          jurorId: `${juror}`,
          share: i === 2 ? "50%" : "75%",
          advanced: false,
          status: i === 2 ? "Appeal" : "Reveal",
        });
        expect(revealed.ruling).to.equal(i === 2 ? "75%" : undefined);
      }
      const ruled = await json("dispute:show", { case: caseId });
      expect(ruled).to.deep.include({ status: "Appeal", ruling: "75%", appealable: true, deadlineWords: "in 1 hour" });

      // The appeal period passes: the final ruling reaches TaskEscrow, which pays the split.
      const before = [await token().balanceOf(signers[1].address), await token().balanceOf(signers[2].address)];
      await time.increase(HOUR);
      const final = await json("dispute:advance", { case: caseId });
      expect(final).to.deep.include({ action: "advance", status: "Ruled" });
      expect(final.events).to.include(
        `Final ruling of case #${caseId}: 75% to the provider, given to ${ctx.addresses.escrow}.`,
      );
      expect((await ctx.escrow.getTask(taskId)).status).to.equal(10n); // Resolved
      expect(await token().balanceOf(signers[2].address)).to.be.greaterThan(before[1]);
      expect(await token().balanceOf(signers[1].address)).to.be.greaterThan(before[0]);

      // Settlement: the 50% juror is slashed 10% of its 10 OKB lock, the others share it and the fee.
      const executed = await json("dispute:advance", { case: caseId });
      expect(executed).to.deep.include({ action: "execute", description: "settled the jurors of round 0" });
      expect(executed.events).to.include(`Juror #${jurors[2]} loses 1.00 OKB (voted against the ruling).`);
      expect(executed.events).to.include(`Juror #${jurors[0]} earns 2.50 USDT and 0.50 OKB (voted with the ruling).`);
      expect(await failure("dispute:advance", { case: caseId })).to.equal(
        `Nothing to do for case #${caseId} now: its ruling is final and every round is settled.`,
      );
      const shownJuror = await json("evaluator:show", { agent: jurors[0] });
      expect(shownJuror.votes).to.deep.equal({ coherent: "1", incoherent: "0" });
      expect(shownJuror.rewards.map((r: { amountText: string }) => r.amountText)).to.deep.equal([
        "0.50 OKB",
        "2.50 USDT",
        "0.00 USDG",
      ]);
      const claimed = await json("evaluator:claim", { agent: jurors[0], rewards: "all", from: from(jurors[0]) });
      const wallet = signers[Number(from(jurors[0]))].address;
      expect(claimed.claims.map((x: { amountText: string; to: string }) => [x.amountText, x.to])).to.deep.equal([
        ["0.50 OKB", wallet],
        ["2.50 USDT", wallet],
      ]);
      expect(await token().balanceOf(wallet)).to.equal(usdt("2.5"));
    });

    it("dispute:reveal advances a case whose commit period is over; dispute:appeal pays the appeal cost", async function () {
      const { caseId } = await disputedTask();
      const jurors = await seated(caseId);
      expect(await failure("dispute:commit", { case: caseId, juror: jurors[0], choice: "60%", from: "0" })).to.equal(
        `"60%" is not a choice: use 0 to 4, or the provider's share 0%, 25%, 50%, 75% or 100%.`,
      );
      const stranger = evaluators.find((e) => !jurors.includes(e))!;
      expect(
        await failure("dispute:commit", { case: caseId, juror: stranger, choice: "1", from: from(stranger) }),
      ).to.equal(`Refused: agent #${stranger} does not sit on the jury of case #${caseId}, round 0.`);
      expect(fs.existsSync(path.join(saltDir, `${caseId}-0-${stranger}.json`))).to.equal(false);
      for (const juror of jurors.slice(0, 2)) {
        await run("dispute:commit", { case: caseId, juror, choice: "100%", from: from(juror) });
      }
      expect(
        await failure("dispute:commit", { case: caseId, juror: jurors[0], choice: "0", from: from(jurors[0]) }),
      ).to.equal(
        `Juror #${jurors[0]} already committed in case #${caseId}, round 0; its salt is in ` +
          `${path.relative(process.cwd(), path.join(saltDir, `${caseId}-0-${jurors[0]}.json`))}: reveal with dispute:reveal.`,
      );
      const deadline = (await court().getCase(caseId)).deadline;
      expect(await failure("dispute:reveal", { case: caseId, juror: jurors[0], from: from(jurors[0]) })).to.equal(
        `Refused: case #${caseId} is in its commit period, when this is not possible.`,
      );
      expect(await failure("dispute:advance", { case: caseId })).to.match(
        new RegExp(
          `^Nothing to do for case #${caseId} now: jurors commit until ${formatTimestamp(deadline)} ` +
            `\\(in (59 minutes \\d+ seconds|1 hour)\\) \\(dispute:commit\\)\\.$`,
        ),
      );
      await time.increase(HOUR);
      const revealed = await json("dispute:reveal", { case: caseId, juror: jurors[0], from: from(jurors[0]) });
      expect(revealed).to.deep.include({ advanced: true, status: "Reveal", share: "100%" });
      expect(revealed.events[0]).to.match(new RegExp(`^Case #${caseId}, round 0: Commit → Reveal, until `));
      expect(await failure("dispute:reveal", { case: caseId, juror: jurors[2], from: from(jurors[2]) })).to.match(
        new RegExp(
          `^There is no salt file for juror #${jurors[2]} in case #${caseId}, round 0 \\(.*\\): reveal from the machine that committed \\(dispute:commit\\)\\.$`,
        ),
      );
      await run("dispute:reveal", { case: caseId, juror: jurors[1], from: from(jurors[1]) });
      expect((await court().getRound(caseId, 0)).ruling).to.equal(4n);

      expect(await failure("dispute:appeal", { case: caseId, party: jurors[0], from: from(jurors[0]) })).to.equal(
        `Refused: agent #${jurors[0]} is not a party of case #${caseId}; only its client or its provider may appeal.`,
      );
      const cost = await court().appealCost(caseId);
      expect(cost).to.equal((usdt("5") * 7n) / 3n);
      await token().connect(signers[1]).approve(ctx.addresses.court!, 0n); // the task approves the cost itself
      const before = await token().balanceOf(signers[1].address);
      const appealed = await json("dispute:appeal", { case: caseId, party: client, from: "1" });
      expect(appealed).to.deep.equal({
        caseId: `${caseId}`,
        partyId: `${client}`,
        round: "1",
        jurySize: "7",
        fee: cost.toString(),
        feeText: "11.666666 USDT",
        approved: true,
        status: "Drawing",
        events: [
          `Agent #${client} appealed: round 1 seats 7 jurors, for a fee of 11.666666 USDT.`,
          `Case #${caseId}, round 1: Appeal → Drawing; a jury still short after ` +
            `${formatTimestamp((await court().getCase(caseId)).deadline)} goes on with the jurors drawn.`,
        ],
        tx: appealed.tx,
      });
      expect(await token().balanceOf(signers[1].address)).to.equal(before - cost);
      // Round 0 is ruled: its jurors are settled (the silent third juror loses 20% of its lock).
      const executed = await json("dispute:advance", { case: caseId });
      expect(executed.action).to.equal("execute");
      expect(executed.events[0]).to.match(
        new RegExp(`^Juror #${jurors[2]} loses 2\\.00 OKB \\(missed its vote; cooldown until `),
      );
      expect(await failure("dispute:show", { case: 999n })).to.equal("Case #999 does not exist in the court.");
      expect(await failure("dispute:show", { task: 999n })).to.equal(
        "Task #999 has no case in the court (no dispute, or one with another arbitrator).",
      );
    });
  });
});
