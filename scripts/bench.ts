/**
 * Gas benchmark (DESIGN §4): exact receipt gas of the protocol's key operations on the in-process
 * network, printed as a table and written to audits/gas-benchmark.md. Gas is deterministic, so
 * these are exact figures for this toolchain (solc 0.8.30, viaIR, 200 runs, cancun).
 *
 *   npm run bench
 *
 * `npm run bench:trace` (BENCH_TRACE=1) runs the same steady-state operations without the growth
 * and court rows, and writes audits/gas-trace.md instead: the call-frame tree of each one
 * (scripts/gas-trace.ts), the figures audits/gas-floors.md is built on.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ethers, ignition, network } from "hardhat";
import MarketModule from "../ignition/modules/Market";
import { courtRows } from "./bench-court";
import { GasTracer, formatTrace } from "./gas-trace";
import { AGREEMENT_TYPES, CHARGE_TYPES, VOUCHER_TYPES } from "../tasks/lib/context";
import {
  AgentRegistry__factory,
  MockStablecoin__factory,
  PayPerUse__factory,
  Reputation__factory,
  TaskEscrow__factory,
  type TaskEscrow,
} from "../typechain-types";

interface Row {
  operation: string;
  gas: bigint;
  target?: string;
  reference?: string;
}

// The inputs of the ERC-8004 reference test suite, so the peer figures compare like with like.
const AGENT_URI = "ipfs://QmTest123";
const FEEDBACK = {
  value: 85n,
  valueDecimals: 0,
  tag1: "quality",
  tag2: "speed",
  endpoint: "https://agent.example.com/",
  feedbackURI: "ipfs://feedback1",
  feedbackHash: ethers.id("feedback content"),
};

const TRACE = process.env.BENCH_TRACE === "1";
/** Transactions to trace in BENCH_TRACE mode, with the benchmark row they stand for. */
const traced: { label: string; hash: string }[] = [];

async function gasOf(tx: Promise<{ wait: () => Promise<{ gasUsed: bigint; hash: string } | null> }>, label?: string) {
  const receipt = await (await tx).wait();
  if (label && TRACE) traced.push({ label, hash: receipt!.hash });
  return receipt!.gasUsed;
}

async function main() {
  if (network.name !== "hardhat") throw new Error("run the benchmark on the in-process network");
  const [admin, alice, bob, reporter, carol] = await ethers.getSigners();
  const sys = await ignition.deploy(MarketModule);
  const registry = AgentRegistry__factory.connect(await sys.registry.getAddress(), admin);
  const reputation = Reputation__factory.connect(await sys.reputation.getAddress(), admin);
  await reputation.grantRole(await reputation.REPORTER_ROLE(), reporter.address);
  const register = (s: typeof alice) => registry.connect(s).getFunction("register(string)")(AGENT_URI);

  const rows: Row[] = [];
  // Warm the accounts (the reference figures are for warm accounts): one registration each.
  const firstEver = await gasOf(register(alice));
  rows.push({
    operation: "register(uri), first agent ever",
    gas: firstEver,
    target: "<= 183,357",
    reference: "ERC-8004 reference 183,357",
  });
  await register(bob);
  const registerGas = await gasOf(register(carol));
  rows.push({ operation: "register(uri), steady state", gas: registerGas });

  // Feedback: alice's agent #1 is rated by bob after two recorded tasks.
  await reputation.connect(reporter).recordTask(2n, 1n, 0, ethers.ZeroAddress, 100_000_000n);
  await reputation.connect(reporter).recordTask(2n, 1n, 0, ethers.ZeroAddress, 100_000_000n);
  const give = () =>
    reputation
      .connect(bob)
      .giveFeedback(
        1n,
        FEEDBACK.value,
        FEEDBACK.valueDecimals,
        FEEDBACK.tag1,
        FEEDBACK.tag2,
        FEEDBACK.endpoint,
        FEEDBACK.feedbackURI,
        FEEDBACK.feedbackHash,
      );
  rows.push({
    operation: "giveFeedback, first from this client",
    gas: await gasOf(give()),
    target: "<= 190,501",
    reference: "ERC-8004 reference 190,501",
  });
  rows.push({
    operation: "giveFeedback, repeat",
    gas: await gasOf(give()),
    target: "<= 108,651",
    reference: "ERC-8004 reference 108,651",
  });
  rows.push({
    operation: "recordTask (reporter), steady state",
    gas: await gasOf(reputation.connect(reporter).recordTask(2n, 1n, 0, ethers.ZeroAddress, 100_000_000n)),
  });

  // consumeSpend, the hook every payment will call: the owner path and an operator's path.
  await registry.grantRole(await registry.SPENDER_ROLE(), reporter.address);
  const token = await registry.getAddress(); // any non-zero address serves as the token here
  const expiry = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 30n * 86_400n;
  await registry.connect(alice).setOperator(1n, admin.address, { expiry, minScoreBps: 0, allowListOnly: false });
  const limit = { perTxCap: 1_000_000_000n, periodCap: 10_000_000_000n, period: 86_400, rolling: true };
  await registry.connect(alice).setTokenLimit(1n, admin.address, token, limit);
  const spend = (spender: string) => registry.connect(reporter).consumeSpend(1n, spender, token, 1_000_000n, 2n);
  await spend(admin.address);
  rows.push({ operation: "consumeSpend, owner (no policy)", gas: await gasOf(spend(alice.address)) });
  rows.push({
    operation: "consumeSpend, operator (rolling cap), steady state",
    gas: await gasOf(spend(admin.address)),
  });

  rows.push(...(await escrowRows(sys, [alice, bob, carol])));
  rows.push(...(await payPerUseRows(sys, [alice, bob, carol, reporter])));
  if (TRACE) return writeTraces(sys);
  rows.push(...(await courtRows(sys, alice, bob, 1n, 2n)));

  const header = "| operation | gas | target | peer |\n| --- | ---: | --- | --- |";
  const body = rows
    .map((r) => `| ${r.operation} | ${r.gas.toLocaleString("en-US")} | ${r.target ?? ""} | ${r.reference ?? ""} |`)
    .join("\n");
  const table = `${header}\n${body}`;
  console.log(table);
  const doc = `# Gas benchmark\n\nWritten by \`npm run bench\` (scripts/bench.ts): receipt gas on the in-process network,\nsolc 0.8.30, viaIR, 200 optimizer runs, cancun. Inputs: agent URI \`${AGENT_URI}\` (${AGENT_URI.length} bytes);\nfeedback value ${FEEDBACK.value} (0 decimals), tags "${FEEDBACK.tag1}"/"${FEEDBACK.tag2}", an endpoint, a URI and a hash.\n\n${table}\n`;
  writeFileSync(join(__dirname, "..", "audits", "gas-benchmark.md"), doc);
}

type Signer = Awaited<ReturnType<typeof ethers.getSigners>>[number];

/**
 * TaskEscrow: the direct hire (post, accept, submit, approve) and the signed agreement (hire,
 * submit, approve) in steady state (third round between the same agents, warm accounts, fee and
 * reputation included), and the growth check: posting, bidding and settling the 1,000th task
 * costs the same as the 2nd.
 */
async function escrowRows(
  sys: { escrow: { getAddress(): Promise<string> }; usdt: { getAddress(): Promise<string> } },
  [client, provider, other]: Signer[],
): Promise<Row[]> {
  const escrow = TaskEscrow__factory.connect(await sys.escrow.getAddress(), client);
  const usdt = MockStablecoin__factory.connect(await sys.usdt.getAddress(), client);
  for (const s of [client, provider, other]) {
    await usdt.mint(s.address, 10n ** 15n);
    await usdt.connect(s).approve(await escrow.getAddress(), ethers.MaxUint256);
  }
  const [clientId, providerId] = [1n, 2n];
  const now = async () => BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const price = 100_000_000n;
  const params = async (mode: number, providerArg: bigint) => ({
    clientId,
    providerId: providerArg,
    mode,
    token: await usdt.getAddress(),
    budget: price,
    maxBudget: price,
    acceptDeadline: (await now()) + 86_400n,
    deliveryDuration: 2 * 86_400,
    reviewPeriod: 86_400,
    minScoreBps: 0,
    parentTaskId: 0n,
    capability: ethers.ZeroHash,
    specHash: ethers.id("spec"),
    specURI: "ipfs://spec",
  });
  const deliver = (e: TaskEscrow, id: bigint) => e.connect(provider).submitWork(id, ethers.id("work"), "ipfs://work");

  let direct: bigint[] = [];
  let agreement: bigint[] = [];
  for (let round = 0n; round < 3n; round++) {
    const label = (name: string) => (round === 2n ? `task, ${name}` : undefined);
    const post = await gasOf(escrow.postTask(await params(0, providerId)), label("direct: postTask"));
    const id = await escrow.taskCount();
    const accept = await gasOf(escrow.connect(provider).acceptTask(id, price, 2 * 86_400), label("direct: acceptTask"));
    direct = [
      post,
      accept,
      await gasOf(deliver(escrow, id), label("direct: submitWork")),
      await gasOf(escrow.approve(id), label("direct: approve")),
    ];

    const terms = {
      clientId,
      providerId,
      token: await usdt.getAddress(),
      price,
      deliveryDuration: 2 * 86_400,
      reviewPeriod: 86_400,
      parentTaskId: 0n,
      specHash: ethers.id("spec"),
      nonce: round,
      expiry: (await now()) + 3_600n,
    };
    const domain = {
      name: "TaskEscrow",
      version: "1",
      chainId: (await ethers.provider.getNetwork()).chainId,
      verifyingContract: await escrow.getAddress(),
    };
    const signature = await provider.signTypedData(domain, AGREEMENT_TYPES, terms);
    const hire = await gasOf(
      escrow.hireWithAgreement(terms, ethers.ZeroHash, "ipfs://spec", provider.address, signature),
      label("agreement: hireWithAgreement"),
    );
    const hid = await escrow.taskCount();
    agreement = [
      hire,
      await gasOf(deliver(escrow, hid), label("agreement: submitWork")),
      await gasOf(escrow.approve(hid), label("agreement: approve")),
    ];
  }
  const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const rows: Row[] = [
    { operation: "task, direct: postTask", gas: direct[0] },
    { operation: "task, direct: acceptTask", gas: direct[1] },
    { operation: "task, direct: submitWork", gas: direct[2] },
    { operation: "task, direct: approve (fee + reputation)", gas: direct[3] },
    {
      operation: "task, direct hire total (4 transactions)",
      gas: sum(direct),
      target: "<= 300,000",
      reference: "ERC-8183 references 418,153-452,806",
    },
    { operation: "task, agreement: hireWithAgreement", gas: agreement[0] },
    {
      operation: "task, signed agreement total (3 transactions)",
      gas: sum(agreement),
      target: "<= 220,000",
      reference: "ERC-8183 references 418,153-452,806",
    },
  ];

  if (TRACE) return rows;
  // Growth: 1,000 bidding tasks, a bid on each; compare the 2nd with the 1,000th.
  const N = 1_000;
  const postGas: bigint[] = [];
  const bidGas: bigint[] = [];
  for (let i = 0; i < N; i++) {
    postGas.push(await gasOf(escrow.postTask(await params(1, 0n))));
    const id = await escrow.taskCount();
    bidGas.push(await gasOf(escrow.connect(provider).placeBid(id, providerId, price, 86_400, ethers.id("p"))));
  }
  const first = (await escrow.taskCount()) - BigInt(N) + 2n;
  const last = await escrow.taskCount();
  const settle = async (id: bigint) =>
    (await gasOf(escrow.selectBid(id, providerId, price, 86_400, ethers.id("p")))) +
    (await gasOf(deliver(escrow, id))) +
    (await gasOf(escrow.approve(id)));
  const settleFirst = await settle(first);
  const settleLast = await settle(last);
  const growth = (a: bigint, b: bigint) => `${((Number(b - a) / Number(a)) * 100).toFixed(2)}% vs 2nd`;
  rows.push(
    { operation: "postTask (bidding), 2nd task", gas: postGas[1] },
    { operation: `postTask (bidding), ${N}th task`, gas: postGas[N - 1], target: growth(postGas[1], postGas[N - 1]) },
    { operation: "placeBid, 2nd bid", gas: bidGas[1] },
    { operation: `placeBid, ${N}th bid`, gas: bidGas[N - 1], target: growth(bidGas[1], bidGas[N - 1]) },
    { operation: "select + submit + approve, 2nd task", gas: settleFirst },
    { operation: `select + submit + approve, ${N}th task`, gas: settleLast, target: growth(settleFirst, settleLast) },
  );
  return rows;
}

/**
 * PayPerUse (DESIGN §4): a repeat charge against a bare `transferFrom` of the same token in the
 * same run (to a recipient that already holds it), a signed charge, a voucher redeem, a batch of
 * 10 sessions, the amortised cost per call of one redeem after 1,000 calls, and growth.
 */
async function payPerUseRows(
  sys: {
    payPerUse: { getAddress(): Promise<string> };
    usdt: { getAddress(): Promise<string> };
    registry: { getAddress(): Promise<string> };
  },
  [payer, provider, facilitator, spender]: Signer[],
): Promise<Row[]> {
  const ppu = PayPerUse__factory.connect(await sys.payPerUse.getAddress(), payer);
  const usdt = MockStablecoin__factory.connect(await sys.usdt.getAddress(), payer);
  const registry = AgentRegistry__factory.connect(await sys.registry.getAddress(), provider);
  const token = await usdt.getAddress();
  await usdt.mint(payer.address, 10n ** 15n);
  await usdt.connect(payer).approve(await ppu.getAddress(), ethers.MaxUint256);
  await usdt.connect(payer).approve(spender.address, ethers.MaxUint256);
  const [payerId, providerId] = [1n, 2n];
  await registry.listService(providerId, ethers.id("search:web"), 0, token, 250_000n, "https://bob.example/api");
  const serviceId = await registry.serviceCount();
  const now = async () => BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const amount = 1_000_000n; // 4 units at 0.25

  // Bare transferFrom, steady state: the recipient already holds the token.
  const bare = (label?: string) =>
    gasOf(usdt.connect(spender).transferFrom(payer.address, provider.address, amount), label);
  await bare();
  const bareGas = await bare("ERC-20 transferFrom (same token, warm recipient)");

  const charge = (label?: string) => gasOf(ppu.charge(payerId, serviceId, 4n, token, amount, ethers.id("req")), label);
  const chargeGas: bigint[] = [];
  for (let i = 0; i < 3; i++) chargeGas.push(await charge(i === 2 ? "ppu: charge, steady state" : undefined));

  const domain = {
    name: "PayPerUse",
    version: "1",
    chainId: (await ethers.provider.getNetwork()).chainId,
    verifyingContract: await ppu.getAddress(),
  };
  const signed = async (nonce: bigint) => {
    const auth = {
      payerId,
      payer: payer.address,
      serviceId,
      token,
      units: 4n,
      amount,
      requestRef: ethers.id("req"),
      nonce,
      validAfter: 0n,
      validBefore: (await now()) + 3_600n,
    };
    const signature = await payer.signTypedData(domain, CHARGE_TYPES, auth);
    return gasOf(
      ppu.connect(facilitator).submitCharge(auth, signature, 0, "0x"),
      nonce === 2n ? "ppu: submitCharge (allowance), steady state" : undefined,
    );
  };
  await signed(0n);
  await signed(1n);
  const signedGas = await signed(2n);

  // Sessions: one session, redeemed twice (the second is the steady-state redeem).
  const openSession = async () => {
    const gas = await gasOf(
      ppu.openSession(payerId, providerId, token, 10n ** 9n, (await now()) + 86_400n, payer.address),
    );
    return { gas, id: await ppu.sessionCount() };
  };
  const voucher = async (sessionId: bigint, amountOwed: bigint, calls: bigint) => {
    const v = { sessionId, amount: amountOwed, calls };
    return { v, signature: await payer.signTypedData(domain, VOUCHER_TYPES, v) };
  };
  const s1 = await openSession();
  const v1 = await voucher(s1.id, 1_000n, 1n);
  await gasOf(ppu.connect(provider).redeem(v1.v, v1.signature));
  const v2 = await voucher(s1.id, 2_000n, 2n);
  const redeemGas = await gasOf(ppu.connect(provider).redeem(v2.v, v2.signature), "ppu: redeem one voucher");

  // 1,000 calls, one redeem.
  const s2 = await openSession();
  const first = await voucher(s2.id, 1_000n, 1n);
  await gasOf(ppu.connect(provider).redeem(first.v, first.signature));
  const last = await voucher(s2.id, 1_000n * 1_001n, 1_001n);
  const thousandGas = await gasOf(ppu.connect(provider).redeem(last.v, last.signature));

  // Batch of 10 sessions (each already redeemed once: steady state).
  const batch: { v: { sessionId: bigint; amount: bigint; calls: bigint }; signature: string }[] = [];
  for (let i = 0; i < 10; i++) {
    const s = await openSession();
    const w = await voucher(s.id, 1_000n, 1n);
    await gasOf(ppu.connect(provider).redeem(w.v, w.signature));
    batch.push(await voucher(s.id, 2_000n, 2n));
  }
  const batchGas = await gasOf(
    ppu.connect(provider).redeemMany(
      batch.map((b) => b.v),
      batch.map((b) => b.signature),
    ),
    "ppu: redeemMany, 10 sessions",
  );
  await gasOf(ppu.requestClose(s1.id));
  await ethers.provider.send("evm_increaseTime", [7_200]);
  const settleGas = await gasOf(ppu.settleSession(s1.id));

  // Growth: the 1,000th charge against the 3rd (not in BENCH_TRACE mode).
  for (let i = 0; i < (TRACE ? 0 : 996); i++) await charge();
  const chargeLast = await charge();
  const ratio = (Number(chargeGas[2]) / Number(bareGas)).toFixed(2);
  return [
    { operation: "ERC-20 transferFrom (same token, warm recipient)", gas: bareGas, reference: "bare OZ 39,863" },
    {
      operation: "ppu: charge, steady state",
      gas: chargeGas[2],
      target: `<= 1.5x transferFrom (${ratio}x)`,
      reference: "one transfer + event 41,272",
    },
    {
      operation: "ppu: submitCharge (allowance), steady state",
      gas: signedGas,
      target: "<= 75,000",
      reference: "x402 Permit2 settle 62,278-79,366",
    },
    { operation: "ppu: openSession", gas: s1.gas },
    {
      operation: "ppu: redeem one voucher with payout",
      gas: redeemGas,
      target: "<= 55,000",
      reference: "x402 claim 46,111 + settle 45,804",
    },
    {
      operation: "ppu: redeemMany, 10 sessions (per session)",
      gas: batchGas / 10n,
      target: "<= 18,000",
      reference: "x402 21,760 (26,341 with settle)",
    },
    {
      operation: "ppu: one redeem after 1,000 calls (per call)",
      gas: thousandGas / 1_000n,
      target: "<= 100",
    },
    { operation: "ppu: settleSession (rest + reputation)", gas: settleGas },
    {
      operation: "ppu: charge, 1000th",
      gas: chargeLast,
      target: `${((Number(chargeLast - chargeGas[2]) / Number(chargeGas[2])) * 100).toFixed(2)}% vs 3rd`,
    },
  ];
}

/** BENCH_TRACE mode: the call-frame tree of every labelled transaction, in audits/gas-trace.md. */
async function writeTraces(
  sys: Record<"registry" | "reputation" | "escrow" | "payPerUse" | "usdt", { getAddress(): Promise<string> }>,
) {
  const tracer = new GasTracer();
  await tracer.nameProxy(await sys.registry.getAddress(), "AgentRegistry", AgentRegistry__factory.createInterface());
  await tracer.nameProxy(await sys.reputation.getAddress(), "Reputation", Reputation__factory.createInterface());
  await tracer.nameProxy(await sys.escrow.getAddress(), "TaskEscrow", TaskEscrow__factory.createInterface());
  await tracer.nameProxy(await sys.payPerUse.getAddress(), "PayPerUse", PayPerUse__factory.createInterface());
  tracer.name(await sys.usdt.getAddress(), "USDT", MockStablecoin__factory.createInterface());
  const sections: string[] = [];
  for (const { label, hash } of traced) {
    const lines = formatTrace(await tracer.trace(hash));
    console.log(`\n${label}\n${lines.join("\n")}`);
    sections.push(`## ${label}\n\n\`\`\`\n${lines.join("\n")}\n\`\`\`\n`);
  }
  const doc = `# Gas trace\n\nWritten by \`npm run bench:trace\` (scripts/bench.ts with BENCH_TRACE=1, scripts/gas-trace.ts): the\nsteady-state operations of the benchmark, call frame by call frame. Each frame shows its inclusive gas and its\nown gas (outside the frames it called), with its storage reads and writes, logs and calls (count and gas).\nGas is gross: storage refunds come off the receipt at the end. Read with [gas-floors.md](gas-floors.md).\n\n${sections.join("\n")}`;
  writeFileSync(join(__dirname, "..", "audits", "gas-trace.md"), doc);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
