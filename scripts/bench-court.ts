/**
 * Court rows of the gas benchmark (DESIGN §4): a new evaluator's stake, and the draw of a 3-juror
 * panel (seats, stake locks, bookkeeping, the move to the commit period) at 100 and at 10,000
 * evaluators. Imported by scripts/bench.ts.
 */
import { ethers, network } from "hardhat";
import {
  AgentRegistry__factory,
  EvaluatorStaking__factory,
  TaskEscrow__factory,
  MockStablecoin__factory,
  VRFCoordinatorV2_5Mock__factory,
} from "../typechain-types";

interface Row {
  operation: string;
  gas: bigint;
  target?: string;
  reference?: string;
}

type Deployment = Record<
  "registry" | "escrow" | "court" | "vrfSource" | "vrfCoordinator" | "usdt",
  { getAddress(): Promise<string> }
>;
type Signer = Awaited<ReturnType<typeof ethers.getSigners>>[number];

const STAKE = ethers.parseEther("100");

async function gasOf(tx: Promise<{ wait: () => Promise<{ gasUsed: bigint } | null> }>) {
  return (await (await tx).wait())!.gasUsed;
}

/** `client` and `provider` (registered agents #clientId, #providerId) dispute a task; returns the case id. */
export async function courtRows(
  sys: Deployment,
  client: Signer,
  provider: Signer,
  clientId: bigint,
  providerId: bigint,
) {
  const [admin] = await ethers.getSigners();
  const registry = AgentRegistry__factory.connect(await sys.registry.getAddress(), admin);
  const escrow = TaskEscrow__factory.connect(await sys.escrow.getAddress(), admin);
  const court = EvaluatorStaking__factory.connect(await sys.court.getAddress(), admin);
  const usdt = MockStablecoin__factory.connect(await sys.usdt.getAddress(), admin);
  const coordinator = VRFCoordinatorV2_5Mock__factory.connect(await sys.vrfCoordinator.getAddress(), admin);
  const source = await sys.vrfSource.getAddress();
  const rows: Row[] = [];

  // Evaluators: agents owned by fresh funded wallets (a party's owner never owns one).
  const owners: Signer[] = [];
  for (let i = 0; i < 4; i++) {
    const w = ethers.Wallet.createRandom().connect(ethers.provider);
    await network.provider.send("hardhat_setBalance", [w.address, "0x" + (10n ** 30n).toString(16)]);
    owners.push(w as unknown as Signer);
  }
  let pool = 0;
  async function grow(to: number) {
    for (; pool < to; pool++) {
      const owner = owners[pool % owners.length];
      await registry.connect(owner).getFunction("register(string)")("ipfs://evaluator");
      const id = await registry.agentCount();
      await court.connect(owner).stake(id, STAKE, { value: STAKE });
    }
  }

  // A new stake in steady state: a fresh agent's first stake (new leaf, new record).
  await grow(99);
  await registry.connect(owners[0]).getFunction("register(string)")("ipfs://evaluator");
  const newId = await registry.agentCount();
  rows.push({
    operation: "court: new stake (first stake of an evaluator, native), 100th evaluator (leaf 99)",
    gas: await gasOf(court.connect(owners[0]).stake(newId, STAKE, { value: STAKE })),
    target: "<= 150,000",
    reference: "Kleros setStake 249,813",
  });
  pool++;

  // Tasks that end in a dispute, all opened now (they wait for the next draw epoch).
  const token = await usdt.getAddress();
  for (const s of [client, provider]) {
    await usdt.mint(s.address, 10n ** 12n);
    await usdt.connect(s).approve(await escrow.getAddress(), ethers.MaxUint256);
  }
  async function dispute() {
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    await escrow.connect(client).postTask({
      clientId,
      providerId,
      mode: 0,
      token,
      budget: 100_000_000n,
      maxBudget: 100_000_000n,
      acceptDeadline: now + 86_400n,
      deliveryDuration: 172_800n,
      reviewPeriod: 86_400n,
      minScoreBps: 0n,
      parentTaskId: 0n,
      capability: ethers.id("bench"),
      specHash: ethers.id("spec"),
      specURI: "ipfs://spec",
    });
    const taskId = await escrow.taskCount();
    await escrow.connect(provider).acceptTask(taskId, 100_000_000n, 172_800n);
    await escrow.connect(provider).submitWork(taskId, ethers.id("work"), "ipfs://work");
    await escrow.connect(client).reject(taskId, ethers.id("no"));
    await escrow.connect(provider).raiseDispute(taskId);
    const gas = await gasOf(escrow.connect(client).payDisputeDeposit(taskId));
    return { caseId: (await escrow.getDispute(taskId)).disputeId, gas };
  }
  async function drawGas(caseId: bigint) {
    // Randomness only after minStakingTime in the Staking phase.
    const [, , phaseSince] = await court.drawState();
    const ready = phaseSince + (await court.timing()).minStakingTime;
    const latest = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    if (latest < ready) await network.provider.send("evm_increaseTime", [Number(ready - latest)]);
    await court.requestRandomness();
    const [, , , requestId] = await court.drawState();
    await coordinator.fulfillRandomWords(requestId, source);
    const receipt = await (await court.draw(caseId, 16)).wait();
    await court.passPhase();
    const round = await court.getRound(caseId, 0);
    if (round.seated !== 3n) throw new Error("the panel was not seated in one call");
    return receipt!.gasUsed;
  }

  const small = await dispute();
  rows.push({ operation: "court: payDisputeDeposit opening a case (TaskEscrow + createDispute)", gas: small.gas });
  const at100 = await drawGas(small.caseId);
  rows.push({ operation: "court: draw of a 3-juror panel, 100 evaluators", gas: at100 });

  await grow(10_000);
  const large = await dispute();
  const at10k = await drawGas(large.caseId);
  rows.push({
    operation: "court: draw of a 3-juror panel, 10,000 evaluators",
    gas: at10k,
    target: "<= 300,000",
    reference: "Kleros v2 689,845",
  });
  rows.push({
    operation: `court: draw growth 100 -> 10,000 evaluators: ${((Number(at10k) / Number(at100) - 1) * 100).toFixed(2)}%`,
    gas: at10k - at100,
    target: "<= 1.15x",
    reference: "Kleros v2 1.13x",
  });
  // Leaf 10,000 opens a new bottom node of the tree (1 leaf in 8 opens one, 1 in 8 a new id word);
  // leaf 10,001 opens no new slot.
  for (const [leaf, what] of [
    [10_000, "opens a tree node"],
    [10_001, "no new slot"],
  ] as const) {
    await registry.connect(owners[1]).getFunction("register(string)")("ipfs://evaluator");
    const id = await registry.agentCount();
    rows.push({
      operation: `court: new stake at 10,000 evaluators, leaf ${leaf.toLocaleString("en-US")} (${what})`,
      gas: await gasOf(court.connect(owners[1]).stake(id, STAKE, { value: STAKE })),
      target: "<= 150,000",
    });
  }
  return rows;
}
