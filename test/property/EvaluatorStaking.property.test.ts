import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse, LogDescription } from "ethers";
import { deployCourt, openCase, stakeFor, waitForStakingTime, OKB, MIN_STAKE, CourtFixture } from "../fixtures/court";

/**
 * EvaluatorStaking properties.
 *
 * 1. Conservation, native and ERC-20 stake: random sequences of stakes, unstake requests, cancels
 *    and claims, disputes, randomness, draws, commits / reveals (some jurors silent), advances,
 *    appeals, settlements in batches, reward claims and time jumps. After every step the court's
 *    balance of the stake asset == held(asset) == Σ(staked + pending + unstaking) + Σ rewards +
 *    the protocol's rewards + slashed stake not yet shared; in the case token, balance == held ==
 *    Σ rewards + fees not yet shared. Every revert is one of the court's (or the escrow's) custom
 *    errors, never a panic.
 * 2. In the same runs: staked >= locked for every evaluator, and locked == minStake x open seats;
 *    a round leaves the Drawing status only with every seat taken (draws of up to 80 candidates and
 *    time jumps of up to 9 days reach the draw timeout, which shrinks a short round to its seated
 *    jurors, or abandons it when nobody is seated).
 * 3. In the same runs, for every seat drawn: not a party, not an agent of a party's owner (alice
 *    stakes her client agent and a second agent with a large stake), not cooled down at the
 *    request, at least minStake free (an evaluator with 15 OKB can hold one seat at a time), and
 *    no evaluator twice in a round.
 * 4. Selection frequency follows stake: 300 (200 with FC_RUNS <= 5) single-candidate draws over stakes 1:2:4:8 pass a
 *    chi-square test (df 3, alpha 0.001) against stake weights and fail it against uniform.
 *
 * Fixed seed by default; FC_SEED, FC_RUNS and FC_COMMANDS (longest sequence) explore further,
 * e.g. `FC_SEED=7 FC_RUNS=30 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 10);
// Draws of the frequency test: fewer under coverage (FC_RUNS=5), where every transaction is slow.
const frequencyDraws = Number(process.env.FC_DRAWS ?? (numRuns <= 5 ? 200 : 300));
const maxCommands = Number(process.env.FC_COMMANDS ?? 40);

const CHI2_DF3_P001 = 16.266;

type Actor = { signer: HardhatEthersSigner; id: bigint };

async function setup(erc20: boolean) {
  const f = await deployCourt({
    erc20,
    evaluators: 7,
    stake: [OKB(40), OKB(60), OKB(100), OKB(150), OKB(30), OKB(15), OKB(80)],
  });
  // Alice stakes her client agent (#1) and a second agent of hers: both must never be drawn.
  await f.registry.connect(f.alice).getFunction("register(string)")("ipfs://alice-evaluator");
  const aliceExtra = await f.registry.agentCount();
  await stakeFor(f.court, f, f.alice, f.aliceId, OKB(200), erc20);
  await stakeFor(f.court, f, f.alice, aliceExtra, OKB(300), erc20);
  const courtAddress = await f.court.getAddress();
  await f.usdt.connect(f.alice).approve(courtAddress, ethers.MaxUint256);
  await f.usdt.connect(f.bob).approve(courtAddress, ethers.MaxUint256);
  return { ...f, aliceExtra };
}
const nativeSetup = () => setup(false);
const erc20Setup = () => setup(true);

type Action =
  | { t: "stake"; who: number; amount: number }
  | { t: "unstake"; who: number; pct: number }
  | { t: "cancel"; who: number }
  | { t: "claimUnstake"; who: number }
  | { t: "open" }
  | { t: "randomness"; word: bigint }
  | { t: "draw"; c: number; iters: number }
  | { t: "pass" }
  | { t: "vote"; c: number; plan: number[] }
  | { t: "advance"; c: number }
  | { t: "appeal"; c: number; client: boolean }
  | { t: "execute"; c: number; r: number; iters: number }
  | { t: "settle"; c: number }
  | { t: "claim"; who: number; usdt: boolean }
  | { t: "protocol" }
  | { t: "time"; secs: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant("stake" as const),
      who: fc.nat(8),
      amount: fc.integer({ min: 1, max: 120 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ t: fc.constant("unstake" as const), who: fc.nat(8), pct: fc.integer({ min: 1, max: 100 }) }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant("cancel" as const), who: fc.nat(8) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("claimUnstake" as const), who: fc.nat(8) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("open" as const) }), weight: 2 },
  {
    arbitrary: fc.record({ t: fc.constant("randomness" as const), word: fc.bigInt(1n, (1n << 256n) - 1n) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ t: fc.constant("draw" as const), c: fc.nat(5), iters: fc.integer({ min: 1, max: 80 }) }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant("pass" as const) }), weight: 3 },
  // plan per seat: 0..4 commit and reveal that choice, 5 commit (choice 2) and stay silent, 6 never commit
  {
    arbitrary: fc.record({
      t: fc.constant("vote" as const),
      c: fc.nat(5),
      plan: fc.array(fc.oneof(fc.nat(4), fc.constantFrom(5, 6)), { minLength: 7, maxLength: 7 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant("advance" as const), c: fc.nat(5) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("appeal" as const), c: fc.nat(5), client: fc.boolean() }), weight: 2 },
  {
    arbitrary: fc.record({
      t: fc.constant("execute" as const),
      c: fc.nat(5),
      r: fc.nat(3),
      iters: fc.integer({ min: 1, max: 16 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ t: fc.constant("settle" as const), c: fc.nat(5) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("claim" as const), who: fc.nat(8), usdt: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("protocol" as const) }), weight: 1 },
  {
    arbitrary: fc.record({ t: fc.constant("time" as const), secs: fc.integer({ min: 1, max: 9 * 86_400 }) }),
    weight: 2,
  },
);

/** Runs `actions` against the court and checks properties 1-3 after every step. */
async function run(f: Awaited<ReturnType<typeof setup>>, actions: Action[]) {
  const { court, usdt, escrow } = f;
  const courtAddress = await court.getAddress();
  const usdtAddress = await usdt.getAddress();
  const asset = f.erc20 ? await f.okb.getAddress() : ethers.ZeroAddress;
  const balanceOf = (a: string) => (f.erc20 ? f.okb.balanceOf(a) : ethers.provider.getBalance(a));
  const actors: Actor[] = [...f.evaluators, { signer: f.alice, id: f.aliceId }, { signer: f.alice, id: f.aliceExtra }];
  const partyAgents = new Set([f.aliceId, f.aliceExtra, f.bobId]);
  const cases: bigint[] = [];
  const openSeats = new Map<bigint, bigint>();
  const feeRewarded = new Map<string, bigint>();
  const stakeRewarded = new Map<string, bigint>();
  let drawTime = 0n;
  const key = (c: bigint, r: bigint) => `${c}:${r}`;
  const add = (m: Map<string, bigint>, k: string, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v);
  const errorFaces = [court.interface, escrow.interface, f.usdt.interface];

  /** Sends a transaction; a revert must be one of the contracts' custom errors. */
  async function attempt(send: () => Promise<ContractTransactionResponse>) {
    let tx: ContractTransactionResponse;
    try {
      tx = await send();
    } catch (err) {
      const data = (err as { data?: string }).data;
      const decoded = data ? errorFaces.map((i) => i.parseError(data)).find((e) => e) : undefined;
      expect(decoded, `unexpected revert: ${(err as Error).message}`).to.not.equal(undefined);
      return undefined;
    }
    const receipt = (await tx.wait())!;
    const logs: LogDescription[] = [];
    for (const log of receipt.logs) {
      if (log.address !== courtAddress) continue;
      const parsed = court.interface.parseLog(log);
      if (parsed) logs.push(parsed);
    }
    for (const l of logs) {
      if (l.name === "JurorDrawn") openSeats.set(l.args.agentId, (openSeats.get(l.args.agentId) ?? 0n) + 1n);
      if (l.name === "JurorSlashed") openSeats.set(l.args.agentId, openSeats.get(l.args.agentId)! - 1n);
      if (l.name === "JurorRewarded") {
        openSeats.set(l.args.agentId, openSeats.get(l.args.agentId)! - 1n);
        add(feeRewarded, key(l.args.caseId, l.args.round), l.args.feeReward);
        add(stakeRewarded, key(l.args.caseId, l.args.round), l.args.stakeReward);
      }
      if (l.name === "RandomnessRequested") {
        drawTime = BigInt((await ethers.provider.getBlock(receipt.blockNumber))!.timestamp);
      }
    }
    return logs;
  }

  async function check() {
    let pool = 0n;
    let rewards = 0n;
    let usdtRewards = 0n;
    for (const a of actors) {
      const e = await court.getEvaluator(a.id);
      expect(e.staked >= e.locked, `agent ${a.id}: staked ${e.staked} < locked ${e.locked}`).to.equal(true);
      expect(e.locked).to.equal(MIN_STAKE * (openSeats.get(a.id) ?? 0n));
      pool += e.staked + e.pending + e.unstaking;
      rewards += await court.rewardsOf(a.id, asset);
      usdtRewards += await court.rewardsOf(a.id, usdtAddress);
    }
    let slashes = 0n;
    let fees = 0n;
    for (const c of cases) {
      const { round: rounds, status } = await court.getCase(c);
      for (let r = 0n; r <= rounds; r++) {
        const round = await court.getRound(c, r);
        const waiting = r === rounds && status === 1n; // Drawing
        const unseated = round.abandoned && round.seated === 0n; // timed out with nobody seated
        expect(round.seated <= round.size, `case ${c} round ${r}: ${round.seated} of ${round.size}`).to.equal(true);
        if (!waiting && !unseated) expect(round.seated, `case ${c} round ${r} left Drawing short`).to.equal(round.size);
        const settled = round.cursor === BigInt(2 * round.jurors.length);
        if (round.abandoned) slashes += settled ? 0n : round.slashPot;
        else slashes += round.slashPot - (stakeRewarded.get(key(c, r)) ?? 0n);
        fees += round.fee - (feeRewarded.get(key(c, r)) ?? 0n);
      }
    }
    const held = await court.held(asset);
    expect(await balanceOf(courtAddress)).to.equal(held);
    expect(held).to.equal(pool + rewards + (await court.rewardsOf(0, asset)) + slashes);
    const heldUsdt = await court.held(usdtAddress);
    expect(await usdt.balanceOf(courtAddress)).to.equal(heldUsdt);
    expect(heldUsdt).to.equal(usdtRewards + fees);
  }

  const pickCase = (i: number) => (cases.length ? cases[i % cases.length] : 0n);
  for (const action of actions) {
    switch (action.t) {
      case "stake": {
        const a = actors[action.who];
        const amount = OKB(action.amount);
        await attempt(async () => {
          if (!f.erc20) return court.connect(a.signer).stake(a.id, amount, { value: amount });
          await f.okb.mint(a.signer.address, amount);
          await f.okb.connect(a.signer).approve(courtAddress, amount);
          return court.connect(a.signer).stake(a.id, amount);
        });
        break;
      }
      case "unstake": {
        const a = actors[action.who];
        const e = await court.getEvaluator(a.id);
        const free = e.staked + e.pending - e.locked;
        await attempt(() => court.connect(a.signer).requestUnstake(a.id, (free * BigInt(action.pct)) / 100n + 1n));
        break;
      }
      case "cancel":
        await attempt(() => court.connect(actors[action.who].signer).cancelUnstake(actors[action.who].id));
        break;
      case "claimUnstake":
        await attempt(() => court.connect(actors[action.who].signer).claimUnstake(actors[action.who].id));
        break;
      case "open":
        if (cases.length < 6) cases.push((await openCase(f)).caseId);
        break;
      case "randomness": {
        // After minStakingTime a request can always be made (when a case waits and the pool weighs).
        if ((await court.drawState())[0] === 0n) await waitForStakingTime(court);
        const logs = await attempt(() => court.requestRandomness());
        if (logs) {
          const [, , , requestId] = await court.drawState();
          await f.coordinator.fulfillRandomWordsWithOverride(requestId, await f.vrfSource.getAddress(), [action.word]);
        }
        break;
      }
      case "draw": {
        const caseId = pickCase(action.c);
        const before = new Map<bigint, { free: bigint; cooldown: bigint }>();
        for (const a of actors) {
          const e = await court.getEvaluator(a.id);
          before.set(a.id, { free: e.staked - e.locked, cooldown: e.cooldownUntil });
        }
        const logs = await attempt(() => court.draw(caseId, action.iters));
        for (const l of logs?.filter((x) => x.name === "JurorDrawn") ?? []) {
          const id: bigint = l.args.agentId;
          expect(partyAgents.has(id), `party agent ${id} drawn`).to.equal(false);
          const owner = await f.registry.ownerOfAgent(id);
          expect([f.alice.address, f.bob.address]).not.to.include(owner);
          expect(before.get(id)!.free >= MIN_STAKE, `agent ${id} drawn with ${before.get(id)!.free} free`).to.equal(
            true,
          );
          expect(before.get(id)!.cooldown <= drawTime, `agent ${id} drawn in cooldown`).to.equal(true);
        }
        if (logs) {
          const c = await court.getCase(caseId);
          const jurors = (await court.getRound(caseId, c.round)).jurors;
          expect(new Set(jurors).size).to.equal(jurors.length);
        }
        break;
      }
      case "pass": {
        // After maxDrawingTime the Drawing phase can always end (unseated cases wait).
        const [phase] = await court.drawState();
        if (phase === 2n) await time.increase(3_600);
        await attempt(() => court.passPhase());
        break;
      }
      case "vote": {
        const caseId = pickCase(action.c);
        if (caseId === 0n) break;
        const c = await court.getCase(caseId);
        const jurors = (await court.getRound(caseId, c.round)).jurors.map((j) => BigInt(j));
        const signerOf = (j: bigint) => actors.find((a) => a.id === j)!.signer;
        const salt = (j: bigint) => ethers.id(`salt-${caseId}-${c.round}-${j}`);
        const choice = (i: number) => (action.plan[i] <= 4 ? action.plan[i] : 2);
        for (let i = 0; i < jurors.length; i++) {
          if (action.plan[i] === 6) continue;
          const hash = await court.commitmentOf(caseId, c.round, jurors[i], choice(i), salt(jurors[i]));
          await attempt(() => court.connect(signerOf(jurors[i])).commit(caseId, jurors[i], hash));
        }
        if ((await court.getCase(caseId)).status === 2n) {
          await time.increase(3_601);
          await attempt(() => court.advance(caseId));
        }
        for (let i = 0; i < jurors.length; i++) {
          if (action.plan[i] >= 5) continue;
          await attempt(() => court.connect(signerOf(jurors[i])).reveal(caseId, jurors[i], choice(i), salt(jurors[i])));
        }
        break;
      }
      case "advance": {
        const caseId = pickCase(action.c);
        if (caseId === 0n) break;
        const c = await court.getCase(caseId);
        const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
        if (c.deadline >= now) await time.increaseTo(c.deadline + 1n);
        await attempt(() => court.advance(caseId));
        break;
      }
      case "appeal": {
        const caseId = pickCase(action.c);
        const [signer, party] = action.client ? [f.alice, f.aliceId] : [f.bob, f.bobId];
        await attempt(() => court.connect(signer).appeal(caseId, party));
        break;
      }
      case "execute": {
        // A round that exists (r modulo the case's rounds); r = 3 also tries one past them.
        const caseId = pickCase(action.c);
        const rounds = caseId === 0n ? 1n : (await court.getCase(caseId)).round + (action.r === 3 ? 2n : 1n);
        await attempt(() => court.execute(caseId, BigInt(action.r) % rounds, action.iters));
        break;
      }
      case "settle": {
        // Past the case's deadline, out of the Drawing phase, then every round settled in full.
        const caseId = pickCase(action.c);
        if (caseId === 0n) break;
        const c = await court.getCase(caseId);
        const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
        if (c.deadline >= now) await time.increaseTo(c.deadline + 1n);
        await attempt(() => court.advance(caseId));
        if ((await court.drawState())[0] === 2n) {
          await time.increase(3_600);
          await attempt(() => court.passPhase());
        }
        for (let r = 0n; r <= (await court.getCase(caseId)).round; r++)
          await attempt(() => court.execute(caseId, r, 16));
        break;
      }
      case "claim": {
        const a = actors[action.who];
        await attempt(() => court.connect(a.signer).claimRewards(a.id, action.usdt ? usdtAddress : asset));
        break;
      }
      case "protocol":
        await attempt(() => court.connect(f.stranger).claimRewards(0, asset));
        break;
      case "time":
        await time.increase(action.secs);
        break;
    }
    await check();
  }
}

describe("EvaluatorStaking properties", function () {
  for (const erc20 of [false, true]) {
    it(`stake and fees are conserved, staked >= locked, draws only seat eligible evaluators (${erc20 ? "ERC-20" : "native"})`, async function () {
      await fc.assert(
        fc.asyncProperty(fc.array(actionArb, { minLength: 10, maxLength: maxCommands }), async (actions) => {
          const f = await loadFixture(erc20 ? erc20Setup : nativeSetup);
          // Every run starts with a case under way so draws and votes have something to act on.
          await run(f, [{ t: "open" }, { t: "randomness", word: 7n }, { t: "draw", c: 0, iters: 40 }, ...actions]);
        }),
        { seed, numRuns, endOnFailure: !!process.env.FC_NOSHRINK },
      );
    });
  }

  it("selection frequency follows stake (1:2:4:8), not a uniform draw", async function () {
    const stakes = [OKB(20), OKB(40), OKB(80), OKB(160)];
    const weighted = () => deployCourt({ evaluators: 4, stake: stakes });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (wordSeed) => {
        // Distinct words derived from the generated seed (the draw hashes each with the case).
        const words = Array.from({ length: frequencyDraws }, (_, i) =>
          BigInt(ethers.solidityPackedKeccak256(["uint256", "uint256"], [wordSeed, i])),
        );
        const f: CourtFixture = await loadFixture(weighted);
        const { caseId } = await openCase(f);
        await waitForStakingTime(f.court);
        await f.court.requestRandomness();
        const [, , , requestId] = await f.court.drawState();
        const source = await f.vrfSource.getAddress();
        const counts = new Map<bigint, number>(f.evaluators.map((e) => [e.id, 0]));
        const snapshot = await takeSnapshot();
        for (const w of words) {
          await f.coordinator.fulfillRandomWordsWithOverride(requestId, source, [w]);
          // One candidate: with every evaluator eligible it is always seated (seat 0).
          await f.court.draw(caseId, 1);
          const [j] = (await f.court.getRound(caseId, 0)).jurors;
          counts.set(BigInt(j), counts.get(BigInt(j))! + 1);
          await snapshot.restore();
        }
        const n = words.length;
        const total = stakes.reduce((a, b) => a + b, 0n);
        let chiWeighted = 0;
        let chiUniform = 0;
        f.evaluators.forEach((e, i) => {
          const observed = counts.get(e.id)!;
          const expectedWeighted = (n * Number(stakes[i])) / Number(total);
          const expectedUniform = n / stakes.length;
          chiWeighted += (observed - expectedWeighted) ** 2 / expectedWeighted;
          chiUniform += (observed - expectedUniform) ** 2 / expectedUniform;
        });
        expect(chiWeighted, `counts ${[...counts.values()]}`).to.be.lessThan(CHI2_DF3_P001);
        expect(chiUniform, `counts ${[...counts.values()]}`).to.be.greaterThan(CHI2_DF3_P001);
      }),
      { seed, numRuns: numRuns <= 5 ? 1 : 2, endOnFailure: true },
    );
  });
});
