/**
 * Gas benchmark (DESIGN §4): exact receipt gas of the protocol's key operations on the in-process
 * network, printed as a table and written to audits/gas-benchmark.md. Gas is deterministic, so
 * these are exact figures for this toolchain (solc 0.8.30, viaIR, 200 runs, cancun).
 *
 *   npm run bench
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ethers, ignition, network } from "hardhat";
import SystemModule from "../ignition/modules/System";
import { AgentRegistry__factory, Reputation__factory } from "../typechain-types";

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

async function gasOf(tx: Promise<{ wait: () => Promise<{ gasUsed: bigint } | null> }>) {
  const receipt = await (await tx).wait();
  return receipt!.gasUsed;
}

async function main() {
  if (network.name !== "hardhat") throw new Error("run the benchmark on the in-process network");
  const [admin, alice, bob, reporter, carol] = await ethers.getSigners();
  const sys = await ignition.deploy(SystemModule);
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

  const header = "| operation | gas | target | peer |\n| --- | ---: | --- | --- |";
  const body = rows
    .map((r) => `| ${r.operation} | ${r.gas.toLocaleString("en-US")} | ${r.target ?? ""} | ${r.reference ?? ""} |`)
    .join("\n");
  const table = `${header}\n${body}`;
  console.log(table);
  const doc = `# Gas benchmark\n\nWritten by \`npm run bench\` (scripts/bench.ts): receipt gas on the in-process network,\nsolc 0.8.30, viaIR, 200 optimizer runs, cancun. Inputs: agent URI \`${AGENT_URI}\` (${AGENT_URI.length} bytes);\nfeedback value ${FEEDBACK.value} (0 decimals), tags "${FEEDBACK.tag1}"/"${FEEDBACK.tag2}", an endpoint, a URI and a hash.\n\n${table}\n`;
  writeFileSync(join(__dirname, "..", "audits", "gas-benchmark.md"), doc);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
