// market:demo — the marketplace so far, told in numbered chapters on the in-process network.
// The court chapters (EvaluatorStaking) come after the PayPerUse ones, before the summary.
import { MaxUint256, ZeroAddress, ZeroHash, id as keccakId, parseUnits } from "ethers";
import type { ContractTransactionReceipt } from "ethers";
import { task } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { limitView, serviceRows } from "./agent";
import { type Agreement, signAgreementTerms, taskView } from "./task";
import {
  type ChargeAuthorization,
  type Voucher,
  approvePayPerUse,
  pendingView,
  signCharge,
  signFunding,
  signVouchers,
} from "./ppu";
import {
  CHOICE_SHARES,
  type CourtContext,
  advanceStep,
  commitVote,
  courtOf,
  evaluatorView,
  fulfilRandomness,
  revealVote,
  stakeFor,
} from "./court";
import {
  type Context,
  type TokenInfo,
  FUNDING,
  TASK_STATUSES,
  chainNow,
  confirm,
  describeToken,
  findEvent,
  formatAmount,
  formatBps,
  formatPeriod,
  formatTimestamp,
  getContext,
  parseCapability,
  printTable,
  shortAddress,
  signAgentWallet,
} from "./lib/context";
import { type ExplainOptions, explain, findRevertData, withPlainErrors } from "./lib/errors";

/** Who plays which part: local accounts by index. */
interface Cast {
  admin: HardhatEthersSigner; // deployed the system; holds every admin role
  translatorOwner: HardhatEthersSigner;
  researcherOwner: HardhatEthersSigner;
  coderOwner: HardhatEthersSigner;
  translatorWallet: HardhatEthersSigner; // the translator's separate agent wallet
  hotKey: HardhatEthersSigner; // the researcher's operator key
  coderKey: HardhatEthersSigner; // the coder's operator key
  stranger: HardhatEthersSigner;
  facilitator: HardhatEthersSigner; // submits signed charges and pays their gas
  evaluatorOwners: HardhatEthersSigner[]; // own the five evaluator agents of the court chapters
}

/** What the chapters share; each chapter may add to `agents`. */
interface Story {
  hre: HardhatRuntimeEnvironment;
  ctx: Context;
  cast: Cast;
  usdt: TokenInfo;
  agents: { translator: bigint; researcher: bigint; coder: bigint };
  /** Tasks one chapter posts and a later one settles. */
  tasks: { first: bigint; second: bigint; silent: bigint };
  /** The translator's pay-per-use service (translate:en-fr), which the PayPerUse chapters buy. */
  ppuService: bigint;
  /** The court chapters' evaluators (agent id -> owner), disputed task, case and jury. */
  court: { evaluators: Map<bigint, HardhatEthersSigner>; taskId: bigint; caseId: bigint; jurors: bigint[] };
  /** Error wording for this story: USDT amounts and named accounts. */
  words: ExplainOptions;
  say(line: string): void;
}

interface Chapter {
  title: string;
  run(story: Story): Promise<void>;
}

/** "40" USDT in its smallest unit, and back to "40.00 USDT". */
const units = (story: Story, amount: string) => parseUnits(amount, story.usdt.decimals);
const usd = (story: Story, value: bigint) => formatAmount(value, story.usdt.decimals, "USDT");

/** Runs a step the story expects the contracts to refuse, and says why in plain words. */
async function refused(story: Story, what: string, step: () => Promise<unknown>): Promise<string> {
  try {
    await step();
  } catch (err) {
    if (findRevertData(err) === undefined) throw err; // not the contract saying no: a real failure
    const sentence = explain(err, story.words);
    story.say(`${what}: ${sentence}`);
    return sentence;
  }
  throw new Error(`The demo expected "${what}" to be refused, but it went through.`);
}

// ------------------------------------------------------------------ chapters

const registerAgents: Chapter = {
  title: "Three agents register",
  async run(story) {
    const { registry } = story.ctx;
    const { translatorOwner, researcherOwner, coderOwner } = story.cast;
    const register = async (owner: HardhatEthersSigner, name: string, uri: string, skills: string) => {
      const metadata = [
        { metadataKey: "name", metadataValue: hex(name) },
        { metadataKey: "skills", metadataValue: hex(skills) },
      ];
      const tx = registry.connect(owner)["register(string,(string,bytes)[])"](uri, metadata);
      const agentId: bigint = findEvent(registry.interface, await confirm(tx), "Registered").agentId;
      story.say(`${name} registers as agent #${agentId}, owned by ${shortAddress(owner.address)}, at ${uri}`);
      return agentId;
    };
    story.agents.translator = await register(translatorOwner, "Translator", "ipfs://translator.json", "en,fr,de");
    story.agents.researcher = await register(
      researcherOwner,
      "Researcher",
      "ipfs://researcher.json",
      "market research",
    );
    story.agents.coder = await register(coderOwner, "Coder", "https://coder.example/agent.json", "solidity,typescript");
  },
};

const listServices: Chapter = {
  title: "They list services in the Agent Market",
  async run(story) {
    const { registry } = story.ctx;
    const { translator, researcher, coder } = story.agents;
    const { translatorOwner, researcherOwner, coderOwner } = story.cast;
    const usdt = story.usdt.address;
    const PPU = 0;
    const TASK = 1;
    const ids: bigint[] = [];
    const list = async (
      owner: HardhatEthersSigner,
      agentId: bigint,
      capability: string,
      mode: number,
      price: bigint,
      endpoint: string,
    ) => {
      const tx = registry
        .connect(owner)
        .listService(agentId, parseCapability(capability), mode, mode === PPU ? usdt : ZeroAddress, price, endpoint);
      ids.push(findEvent(registry.interface, await confirm(tx), "ServiceListed").serviceId);
    };
    await list(
      translatorOwner,
      translator,
      "translate:en-fr",
      PPU,
      units(story, "0.02"),
      "https://translator.example/mcp",
    );
    await list(researcherOwner, researcher, "research:market-report", TASK, 0n, "a2a://researcher.example");
    await list(coderOwner, coder, "code:solidity-review", TASK, 0n, "https://coder.example/a2a");
    await list(coderOwner, coder, "code:lint", PPU, units(story, "0.50"), "https://coder.example/mcp");
    story.say("Pay-per-use services carry a USDT unit price; quoted tasks are priced per task later, in escrow.");
    printTable(await serviceRows(story.ctx, ids), { title: "   The catalog:" });
  },
};

const agentWallet: Chapter = {
  title: "The translator sets a separate agent wallet",
  async run(story) {
    const { registry } = story.ctx;
    const { translatorOwner, translatorWallet } = story.cast;
    const agentId = story.agents.translator;
    const deadline = (await chainNow(story.hre)) + 240n;
    const signature = await signAgentWallet(registry, translatorWallet, agentId, translatorOwner.address, deadline);
    story.say(`The wallet ${shortAddress(translatorWallet.address)} signs the EIP-712 AgentWalletSet proof`);
    story.say(`(valid until ${formatTimestamp(deadline)}); the owner submits it.`);
    await confirm(
      registry.connect(translatorOwner).setAgentWallet(agentId, translatorWallet.address, deadline, signature),
    );
    const wallet = await registry.getAgentWallet(agentId);
    story.say(`Agent #${agentId}'s money now flows to and from ${shortAddress(wallet)}, not its owner.`);
    await refused(story, "Replaying the same proof", () =>
      registry.connect(translatorOwner).setAgentWallet(agentId, translatorWallet.address, deadline, signature),
    );
  },
};

const operatorKey: Chapter = {
  title: "The researcher's owner authorises a hot key",
  async run(story) {
    const { registry } = story.ctx;
    const { researcherOwner, hotKey } = story.cast;
    const { researcher, translator } = story.agents;
    const owner = registry.connect(researcherOwner);
    const expiry = (await chainNow(story.hre)) + 7n * 86_400n;
    await confirm(owner.setOperator(researcher, hotKey.address, { expiry, minScoreBps: 0, allowListOnly: true }));
    const limit = { perTxCap: units(story, "40"), periodCap: units(story, "100"), period: 86_400, rolling: true };
    await confirm(owner.setTokenLimit(researcher, hotKey.address, story.usdt.address, limit));
    await confirm(owner.setCounterparties(researcher, hotKey.address, [translator], true));
    story.say(
      `Operator ${shortAddress(hotKey.address)} may act for agent #${researcher} until ${formatTimestamp(expiry)}.`,
    );
    story.say(`It may spend at most 100.00 USDT per rolling 24h, 40.00 USDT per transaction,`);
    story.say(`and only towards agents on its allow-list: #${translator} (the translator).`);

    const { coderOwner, coderKey } = story.cast;
    const coder = registry.connect(coderOwner);
    await confirm(
      coder.setOperator(story.agents.coder, coderKey.address, { expiry, minScoreBps: 4_000, allowListOnly: false }),
    );
    const looser = { perTxCap: units(story, "25"), periodCap: units(story, "50"), period: 86_400, rolling: false };
    await confirm(coder.setTokenLimit(story.agents.coder, coderKey.address, story.usdt.address, looser));
    story.say(
      `The coder's owner gives its own hot key ${shortAddress(coderKey.address)} a looser policy: 25.00 USDT per`,
    );
    story.say(`transaction, 50.00 USDT per fixed 24h window (UTC days), any counterparty scoring at least 40.00%.`);
  },
};

// ------------------------------------------------------------------ TaskEscrow helpers

const DIRECT = 0;
const BIDDING = 1;
const AUTO_MATCH = 2;
const HOUR = 3_600;
const DAY = 86_400;

/** Mints test USDT (the Mocks faucet) to `who`, who lets the escrow take it. */
async function fund(story: Story, who: HardhatEthersSigner, amount: string) {
  const { MockStablecoin__factory } = await import("../typechain-types");
  const usdt = MockStablecoin__factory.connect(story.usdt.address, who);
  await confirm(usdt.mint(who.address, units(story, amount)));
  await confirm(usdt.approve(story.ctx.addresses.escrow, MaxUint256));
}

interface Posting {
  clientId: bigint;
  providerId?: bigint;
  mode?: number;
  budget: string;
  maxBudget?: string;
  reviewPeriod?: number;
  minScoreBps?: number;
  capability?: string;
  specURI: string;
}

/** `payer` posts a USDT task (1 day to take it, 2 days to deliver, 1 day to review by default). */
async function postTask(story: Story, payer: HardhatEthersSigner, p: Posting): Promise<bigint> {
  const { escrow } = story.ctx;
  const params = {
    clientId: p.clientId,
    providerId: p.providerId ?? 0n,
    mode: p.mode ?? DIRECT,
    token: story.usdt.address,
    budget: units(story, p.budget),
    maxBudget: units(story, p.maxBudget ?? p.budget),
    acceptDeadline: (await chainNow(story.hre)) + BigInt(DAY),
    deliveryDuration: 2 * DAY,
    reviewPeriod: p.reviewPeriod ?? DAY,
    minScoreBps: p.minScoreBps ?? 0,
    parentTaskId: 0n,
    capability: p.capability ?? ZeroHash,
    specHash: keccakId(p.specURI),
    specURI: p.specURI,
  };
  const receipt = await confirm(escrow.connect(payer).postTask(params));
  return findEvent(escrow.interface, receipt, "TaskPosted").taskId;
}

/** The provider delivers and the client approves; returns the settlement. */
async function deliverAndApprove(
  story: Story,
  taskId: bigint,
  provider: HardhatEthersSigner,
  client: HardhatEthersSigner,
  deliverable: string,
) {
  const { escrow } = story.ctx;
  await confirm(escrow.connect(provider).submitWork(taskId, keccakId(deliverable), deliverable));
  return settlement(story, await confirm(escrow.connect(client).approve(taskId)));
}

/** The TaskSettled event of a receipt. */
function settlement(story: Story, receipt: ContractTransactionReceipt) {
  const e = findEvent(story.ctx.escrow.interface, receipt, "TaskSettled");
  return { toProvider: e.toProvider as bigint, toClient: e.toClient as bigint, fee: e.fee as bigint };
}

/**
 * USDT balances after a settlement, in one row: the parties' wallets, the treasury and the fees not
 * yet swept (of TaskEscrow, or with `payPerUse` of PayPerUse, plus what it holds of session deposits:
 * each unsettled session's deposit less what its provider was paid, so its fee until it is settled).
 */
async function balances(story: Story, parties: [string, string][], opts: { payPerUse?: boolean } = {}) {
  const { escrow, payPerUse } = story.ctx;
  const { IERC20Metadata__factory } = await import("../typechain-types");
  const usdt = IERC20Metadata__factory.connect(story.usdt.address, story.hre.ethers.provider);
  const [, , treasury] = opts.payPerUse ? await payPerUse.config() : await escrow.config();
  const fees = await (opts.payPerUse ? payPerUse : escrow).accruedFees(story.usdt.address);
  const row: Record<string, string> = {};
  for (const [account, address] of [...parties, ["treasury", treasury] as [string, string]]) {
    row[account] = formatAmount(await usdt.balanceOf(address), story.usdt.decimals);
  }
  row["fees accrued, not swept"] = formatAmount(fees, story.usdt.decimals);
  if (opts.payPerUse) {
    const held = await usdt.balanceOf(story.ctx.addresses.payPerUse);
    row["session deposits held"] = formatAmount(held - fees, story.usdt.decimals);
  }
  printTable([row], { title: "   USDT balances:" });
}

// ------------------------------------------------------------------ TaskEscrow chapters

const spending: Chapter = {
  title: "The hot key spends, and the policy holds",
  async run(story) {
    const { registry } = story.ctx;
    const { researcherOwner, hotKey, coderKey } = story.cast;
    const { researcher, translator, coder } = story.agents;
    const token = story.usdt.address;
    story.say(`TaskEscrow holds SPENDER_ROLE on the registry: before it locks a task's budget it calls consumeSpend,`);
    story.say(`which checks the payer and debits an operator's policy, or refuses, before any money moves.`);
    await fund(story, hotKey, "100");
    story.say(`The hot key takes 100.00 USDT from the test faucet, approves the escrow and posts direct tasks`);
    story.say(`for the translator (the hot key pays; refunds go back to the agent's wallet).`);
    const post = (amount: string, providerId: bigint) =>
      postTask(story, hotKey, { clientId: researcher, providerId, budget: amount, specURI: "ipfs://fr-glossary.md" });
    const posted: bigint[] = [];
    for (const n of [1, 2]) {
      posted.push(await post("40", translator));
      const left = await registry.availableToSpend(researcher, hotKey.address, token);
      story.say(
        `Spend ${n}: ${usd(story, units(story, "40"))} to the translator: accepted; task #${posted[n - 1]} locks it ` +
          `in escrow, and the next payment may be up to ${usd(story, left)}.`,
      );
    }
    [story.tasks.first, story.tasks.second] = posted;
    await refused(story, `Spend 3: ${usd(story, units(story, "40"))} to the translator`, () => post("40", translator));
    await refused(story, `Spend 4: ${usd(story, units(story, "10"))} to the coder (#${coder})`, () =>
      post("10", coder),
    );
    await confirm(registry.connect(researcherOwner).revokeOperator(researcher, hotKey.address));
    story.say(`The owner revokes the hot key.`);
    await refused(story, `Spend 5: ${usd(story, units(story, "10"))} to the translator`, () => post("10", translator));

    const score = formatBps(await story.ctx.reputation.score(translator));
    await fund(story, coderKey, "25");
    story.tasks.silent = await postTask(story, coderKey, {
      clientId: coder,
      providerId: translator,
      budget: "25",
      reviewPeriod: HOUR,
      specURI: "ipfs://readme-fr.md",
    });
    story.say(
      `Meanwhile the coder's hot key pays the translator (score ${score}) 25.00 USDT: accepted ` +
        `(task #${story.tasks.silent}, one-hour review period).`,
    );
  },
};

const reputation: Chapter = {
  title: "A completed task earns a rating",
  async run(story) {
    const { escrow, reputation } = story.ctx;
    const { researcherOwner, translatorWallet, hotKey, stranger } = story.cast;
    const { researcher, translator } = story.agents;
    const taskId = story.tasks.first;
    const t = await escrow.getTask(taskId);
    await confirm(escrow.connect(translatorWallet).acceptTask(taskId, t.amount, t.deliveryDuration));
    story.say(
      `The translator's wallet (a wallet may act for its agent) accepts task #${taskId} at ${usd(story, t.amount)},`,
    );
    story.say(`delivers the glossary, and the researcher's owner approves it.`);
    const s = await deliverAndApprove(story, taskId, translatorWallet, researcherOwner, "ipfs://glossary-fr.csv");
    story.say(
      `TaskEscrow pays ${usd(story, s.toProvider)} to the translator's wallet and keeps ${usd(story, s.fee)} ` +
        `(the ${formatBps(t.feeBps)} protocol fee) for the treasury.`,
    );
    story.say(`Holding REPORTER_ROLE in Reputation, it records the completed task in the same transaction:`);
    story.say(`the researcher (#${researcher}) hired the translator (#${translator}) for ${usd(story, t.amount)}.`);
    await balances(story, [
      ["researcher's hot key", hotKey.address],
      ["translator's wallet", translatorWallet.address],
    ]);
    story.say(`Each owner now holds one right to rate the other agent.`);
    await confirm(
      reputation
        .connect(researcherOwner)
        .giveFeedback(translator, 95, 0, "translate", "en-fr", "https://translator.example/mcp", "", ZeroHash),
    );
    story.say(`The researcher's owner rates the translator 95/100.`);
    await refused(story, "A stranger's rating of the translator", () =>
      reputation.connect(stranger).giveFeedback(translator, 5, 0, "", "", "", "", ZeroHash),
    );
    story.say(`The translator's score is now ${formatBps(await reputation.score(translator))}.`);
  },
};

const bidding: Chapter = {
  title: "A task won by bidding",
  async run(story) {
    const { escrow } = story.ctx;
    const { researcherOwner, translatorWallet, coderOwner } = story.cast;
    const { researcher, translator, coder } = story.agents;
    await fund(story, researcherOwner, "500");
    story.say(`The researcher's owner takes 500.00 USDT from the faucet and approves the escrow.`);
    const taskId = await postTask(story, researcherOwner, {
      clientId: researcher,
      mode: BIDDING,
      budget: "50",
      maxBudget: "60",
      specURI: "ipfs://summarise-20-french-sources.md",
    });
    story.say(`It posts task #${taskId} for bids (summarise 20 French sources), locking at most 60.00 USDT.`);
    const proposal = keccakId("ipfs://proposal.md");
    await confirm(escrow.connect(translatorWallet).placeBid(taskId, translator, units(story, "55"), DAY, proposal));
    await confirm(escrow.connect(coderOwner).placeBid(taskId, coder, units(story, "45"), 2 * DAY, proposal));
    story.say(`Bids: the translator asks 55.00 USDT within 1 day, the coder 45.00 USDT within 2 days.`);
    await confirm(escrow.connect(researcherOwner).selectBid(taskId, coder, units(story, "45"), 2 * DAY, proposal));
    story.say(`The researcher selects the cheaper bid: the coder works on it for 45.00 USDT, and the 15.00 USDT`);
    story.say(`not needed goes back to the researcher's wallet at once.`);
    const s = await deliverAndApprove(story, taskId, coderOwner, researcherOwner, "ipfs://summary.md");
    story.say(`Delivered and approved: ${usd(story, s.toProvider)} to the coder, ${usd(story, s.fee)} fee.`);
    await balances(story, [
      ["researcher's wallet (owner)", researcherOwner.address],
      ["coder's wallet (owner)", coderOwner.address],
    ]);
  },
};

const agreement: Chapter = {
  title: "A direct hire through a signed agreement",
  async run(story) {
    const { escrow } = story.ctx;
    const { researcherOwner, translatorWallet } = story.cast;
    const { researcher, translator } = story.agents;
    const specURI = "ipfs://report-en.md";
    const terms: Agreement = {
      clientId: researcher,
      providerId: translator,
      token: story.usdt.address,
      price: units(story, "30"),
      deliveryDuration: BigInt(DAY),
      reviewPeriod: BigInt(DAY),
      parentTaskId: 0n,
      specHash: keccakId(specURI),
      nonce: 1n,
      expiry: (await chainNow(story.hre)) + BigInt(HOUR),
    };
    const signature = await signAgreementTerms(story.ctx, translatorWallet, terms);
    story.say(`Off-chain, the translator's wallet signs terms (EIP-712 Agreement): 30.00 USDT to translate the`);
    story.say(`researcher's report into French within 1 day, nonce 1, valid for one hour.`);
    const hire = () =>
      escrow.connect(researcherOwner).hireWithAgreement(terms, ZeroHash, specURI, translatorWallet.address, signature);
    const taskId: bigint = findEvent(escrow.interface, await confirm(hire()), "TaskPosted").taskId;
    const status = TASK_STATUSES[Number((await escrow.getTask(taskId)).status)];
    story.say(`The researcher's owner submits them: task #${taskId} is created, funded and assigned in one`);
    story.say(`transaction (status ${status}).`);
    await refused(story, "Submitting the same signed terms again", hire);
    const s = await deliverAndApprove(story, taskId, translatorWallet, researcherOwner, "ipfs://report-fr.md");
    story.say(
      `Delivered and approved: ${usd(story, s.toProvider)} to the translator's wallet, ${usd(story, s.fee)} fee.`,
    );
    await balances(story, [
      ["researcher's wallet (owner)", researcherOwner.address],
      ["translator's wallet", translatorWallet.address],
    ]);
  },
};

const autoMatch: Chapter = {
  title: "An auto-matched task",
  async run(story) {
    const { escrow, registry } = story.ctx;
    const { researcherOwner, translatorWallet, coderOwner } = story.cast;
    const { researcher, translator, coder } = story.agents;
    const capability = parseCapability("code:gas-review");
    const QUOTED = 1;
    const listed = registry
      .connect(coderOwner)
      .listService(coder, capability, QUOTED, ZeroAddress, 0n, "https://coder.example/a2a");
    const serviceId: bigint = findEvent(registry.interface, await confirm(listed), "ServiceListed").serviceId;
    story.say(`The coder lists a quoted-task service: #${serviceId}, code:gas-review.`);
    const taskId = await postTask(story, researcherOwner, {
      clientId: researcher,
      mode: AUTO_MATCH,
      budget: "20",
      minScoreBps: 4_000,
      capability,
      specURI: "ipfs://gas-review.md",
    });
    story.say(`The researcher posts task #${taskId} for auto-match: the first agent that lists code:gas-review and`);
    story.say(`scores at least 40.00% may claim it, at 20.00 USDT.`);
    const [translatorService] = await registry.getAgentServices(translator);
    await refused(story, `The translator's claim with its service #${translatorService}`, () =>
      escrow.connect(translatorWallet).claimTask(taskId, translator, translatorService),
    );
    await confirm(escrow.connect(coderOwner).claimTask(taskId, coder, serviceId));
    story.say(`The coder claims it with service #${serviceId}.`);
    const s = await deliverAndApprove(story, taskId, coderOwner, researcherOwner, "ipfs://gas-report.md");
    story.say(`Delivered and approved: ${usd(story, s.toProvider)} to the coder, ${usd(story, s.fee)} fee.`);
    await balances(story, [
      ["researcher's wallet (owner)", researcherOwner.address],
      ["coder's wallet (owner)", coderOwner.address],
    ]);
  },
};

const closedWhileOpen: Chapter = {
  title: "A task closed while open",
  async run(story) {
    const { escrow } = story.ctx;
    const { researcherOwner, hotKey } = story.cast;
    const taskId = story.tasks.second;
    const s = settlement(story, await confirm(escrow.connect(researcherOwner).closeTask(taskId)));
    story.say(
      `Nobody took task #${taskId}, the hot key's second 40.00 USDT posting. The researcher's owner closes it:`,
    );
    story.say(`all ${usd(story, s.toClient)} comes back at once, to the researcher agent's wallet (its owner) rather`);
    story.say(`than the hot key that paid. No fee is taken and nothing is recorded in Reputation.`);
    await balances(story, [
      ["researcher's wallet (owner)", researcherOwner.address],
      ["researcher's hot key", hotKey.address],
    ]);
  },
};

const timesOut: Chapter = {
  title: "A task that times out",
  async run(story) {
    const { escrow } = story.ctx;
    const { translatorWallet, coderKey, coderOwner, stranger } = story.cast;
    const taskId = story.tasks.silent;
    const t = await escrow.getTask(taskId);
    await confirm(escrow.connect(translatorWallet).acceptTask(taskId, t.amount, t.deliveryDuration));
    await confirm(
      escrow.connect(translatorWallet).submitWork(taskId, keccakId("ipfs://readme-fr.md"), "ipfs://readme-fr.md"),
    );
    story.say(`The translator accepts task #${taskId} (the coder's ${usd(story, t.amount)}, one-hour review period)`);
    story.say(`and delivers. The coder stays silent.`);
    await refused(story, "A timeout at once", () => escrow.connect(stranger).timeout(taskId));
    await story.hre.network.provider.send("evm_increaseTime", [HOUR + 1]);
    await story.hre.network.provider.send("evm_mine", []);
    story.say(`An hour passes (evm_increaseTime on the in-process network).`);
    const s = settlement(story, await confirm(escrow.connect(stranger).timeout(taskId)));
    story.say(
      `Now anyone may call timeout. A stranger does: the translator's wallet receives ${usd(story, s.toProvider)}`,
    );
    story.say(`(${usd(story, s.fee)} fee), and Reputation records an auto-completed task.`);
    const swept = findEvent(
      escrow.interface,
      await confirm(escrow.connect(stranger).sweepFees(story.usdt.address)),
      "FeesSwept",
    ).amount;
    story.say(`Anyone may also sweep the accrued fees: ${usd(story, swept)} go to the treasury.`);
    await balances(story, [
      ["coder's hot key", coderKey.address],
      ["coder's wallet (owner)", coderOwner.address],
      ["translator's wallet", translatorWallet.address],
    ]);
  },
};

// ------------------------------------------------------------------ PayPerUse chapters

/** 1234 -> "1,234". */
const grouped = (value: bigint | number) => formatAmount(BigInt(value), 0);

const payPerCall: Chapter = {
  title: "Pay-per-use: the researcher pays the translator per request",
  async run(story) {
    const { payPerUse, registry } = story.ctx;
    const { researcherOwner, translatorWallet, hotKey } = story.cast;
    const { researcher, translator } = story.agents;
    const [serviceId] = await registry.getAgentServices(translator);
    story.ppuService = serviceId;
    const { unitPrice } = await registry.getService(serviceId);
    story.say(`PayPerUse sells the catalog's pay-per-use services with no task and no escrow: the translator's`);
    story.say(`service #${serviceId} (translate:en-fr) costs ${usd(story, unitPrice)} a word, paid with each request.`);
    await approvePayPerUse(story.ctx, researcherOwner, story.usdt);
    story.say(`The researcher's owner approves PayPerUse once and pays for three requests at the quoted price:`);
    const requests: [number, bigint][] = [
      [1, 250n],
      [2, 400n],
      [3, 1_200n],
    ];
    for (const [n, words] of requests) {
      const [total, , token] = await payPerUse.quote(serviceId, words);
      const ref = keccakId(`fr-doc-${n}`);
      const tx = payPerUse.connect(researcherOwner).charge(researcher, serviceId, words, token, total, ref);
      const e = findEvent(payPerUse.interface, await confirm(tx), "Charged");
      story.say(
        `Request ${n}: ${grouped(words)} words for ${usd(story, e.total)}, receipt #${e.receiptId}: ` +
          `${usd(story, (e.total as bigint) - (e.fee as bigint))} to the translator's wallet at once, ${usd(story, e.fee)} fee.`,
      );
    }
    const pending = await pendingView(story.ctx, researcher, translator, story.usdt);
    story.say(`None of this is in Reputation yet, nor are the researcher's rights to rate: PayPerUse counts the`);
    story.say(`charges per pair (payer, provider, token), which spares each one a call to Reputation. Waiting for`);
    story.say(
      `this pair: ${grouped(pending.receipts)} charges, ${grouped(pending.calls)} words (as calls), ` +
        `${pending.amountText}; anyone may record them.`,
    );
    await refused(story, "The revoked hot key paying for a request", () =>
      payPerUse.connect(hotKey).charge(researcher, serviceId, 100n, story.usdt.address, MaxUint256, ZeroHash),
    );
    await balances(
      story,
      [
        ["researcher's wallet (owner)", researcherOwner.address],
        ["translator's wallet", translatorWallet.address],
      ],
      { payPerUse: true },
    );
  },
};

const facilitated: Chapter = {
  title: "A signed charge, submitted by a facilitator",
  async run(story) {
    const { payPerUse } = story.ctx;
    const { researcherOwner, translatorWallet, facilitator } = story.cast;
    const { researcher } = story.agents;
    const serviceId = story.ppuService;
    const words = 500n;
    const [amount, , token] = await payPerUse.quote(serviceId, words);
    const validBefore = (await chainNow(story.hre)) + 600n;
    const auth: ChargeAuthorization = {
      payerId: researcher,
      payer: researcherOwner.address,
      serviceId,
      token,
      units: words,
      amount,
      requestRef: keccakId("fr-doc-4"),
      nonce: 42n,
      validAfter: 0n,
      validBefore,
    };
    const signature = await signCharge(story.ctx, researcherOwner, auth);
    const fundingData = await signFunding(story.ctx, researcherOwner, story.usdt, "3009", amount, validBefore);
    story.say(
      `Off chain, the researcher's owner signs a ChargeAuthorization (x402 "exact"): ${grouped(words)} words of`,
    );
    story.say(`service #${serviceId} for ${usd(story, amount)}, nonce 42, valid ten minutes; with it an EIP-3009`);
    story.say(`ReceiveWithAuthorization of exactly ${usd(story, amount)} to PayPerUse, so no allowance is involved.`);
    const provider = story.hre.ethers.provider;
    const nativeBefore = await provider.getBalance(researcherOwner.address);
    const submit = () =>
      payPerUse.connect(facilitator).submitCharge(auth, signature, FUNDING.ReceiveWithAuthorization, fundingData);
    const receipt = await confirm(submit());
    const e = findEvent(payPerUse.interface, receipt, "Charged");
    story.say(
      `A facilitator (${shortAddress(facilitator.address)}) submits both and pays the gas ` +
        `(${grouped(receipt.gasUsed)} gas). Receipt #${e.receiptId}:`,
    );
    story.say(
      `${usd(story, (e.total as bigint) - (e.fee as bigint))} to the translator's wallet, ${usd(story, e.fee)} fee.`,
    );
    if ((await provider.getBalance(researcherOwner.address)) !== nativeBefore) {
      throw new Error("The payer's native balance moved: a signed charge should cost it no gas.");
    }
    story.say(`The researcher's owner sent no transaction: its native balance has not moved.`);
    const pending = await pendingView(story.ctx, researcher, story.agents.translator, story.usdt);
    story.say(
      `The charge joins the pair's others waiting for Reputation: now ${grouped(pending.receipts)} charges, ` +
        `${grouped(pending.calls)} words, ${pending.amountText}.`,
    );
    await refused(story, "The facilitator submitting it a second time", submit);
    await balances(
      story,
      [
        ["researcher's wallet (owner)", researcherOwner.address],
        ["translator's wallet", translatorWallet.address],
        ["facilitator", facilitator.address],
      ],
      { payPerUse: true },
    );
  },
};

const session: Chapter = {
  title: "A session: 1,000 calls, one redemption",
  async run(story) {
    const { payPerUse, reputation } = story.ctx;
    const { researcherOwner, translatorWallet, stranger } = story.cast;
    const { researcher, translator } = story.agents;
    const deposit = units(story, "30");
    const perCall = units(story, "0.02");
    const expiry = (await chainNow(story.hre)) + BigInt(DAY);
    const opened = payPerUse
      .connect(researcherOwner)
      .openSession(researcher, translator, story.usdt.address, deposit, expiry, researcherOwner.address);
    const sessionId: bigint = findEvent(payPerUse.interface, await confirm(opened), "SessionOpened").sessionId;
    story.say(`For a long run of short calls, the researcher's owner opens session #${sessionId} with the translator:`);
    story.say(`${usd(story, deposit)} deposited in PayPerUse for a day; vouchers signed by the owner count.`);
    const CALLS = 1_000;
    const vouchers: Voucher[] = Array.from({ length: CALLS }, (_, i) => ({
      sessionId,
      amount: perCall * BigInt(i + 1),
      calls: BigInt(i + 1),
    }));
    const signatures = await signVouchers(story.ctx, researcherOwner, vouchers);
    story.say(
      `It makes ${grouped(CALLS)} calls at ${usd(story, perCall)} each and signs a cumulative voucher after each`,
    );
    story.say(
      `(voucher n: n x ${usd(story, perCall)} for n calls): ${grouped(CALLS)} EIP-712 signatures off chain, no transaction.`,
    );
    const last = CALLS - 1;
    const feesBefore = await payPerUse.accruedFees(story.usdt.address);
    const receipt = await confirm(payPerUse.connect(translatorWallet).redeem(vouchers[last], signatures[last]));
    const e = findEvent(payPerUse.interface, receipt, "VoucherRedeemed");
    if ((await payPerUse.accruedFees(story.usdt.address)) !== feesBefore) {
      throw new Error("A redemption booked a fee: a session's fee should be booked only when it is settled.");
    }
    story.say(
      `The translator's wallet redeems only the last voucher: ${usd(story, e.amount)} for ${grouped(e.calls)} calls, ` +
        `${usd(story, e.paid)} to it;`,
    );
    story.say(
      `the ${usd(story, e.fee)} fee stays with the session's deposit in PayPerUse until the session is settled.`,
    );
    story.say(
      `${grouped(CALLS)} vouchers redeemed in one transaction: ${grouped(receipt.gasUsed)} gas used, ` +
        `${grouped((receipt.gasUsed + BigInt(CALLS) / 2n) / BigInt(CALLS))} gas per call.`,
    );
    const stale = await confirm(payPerUse.connect(translatorWallet).redeem(vouchers[499], signatures[499]));
    if (stale.logs.some((log) => payPerUse.interface.parseLog(log)?.name === "VoucherRedeemed")) {
      throw new Error("An older voucher paid again: only the largest voucher should count.");
    }
    story.say(`An older voucher (#500) is worth nothing now: redeeming it pays nothing, and does not revert.`);
    await confirm(payPerUse.connect(researcherOwner).requestClose(sessionId));
    const { endsAt, closeGrace } = await payPerUse.getSession(sessionId);
    story.say(`The researcher's owner asks to close: the translator may still redeem vouchers for the`);
    story.say(`${formatPeriod(closeGrace)} grace period, until ${formatTimestamp(endsAt)}.`);
    await refused(story, "Settling the session at once", () => payPerUse.connect(stranger).settleSession(sessionId));
    await story.hre.network.provider.send("evm_increaseTime", [Number(closeGrace) + 1]);
    await story.hre.network.provider.send("evm_mine", []);
    const settled = findEvent(
      payPerUse.interface,
      await confirm(payPerUse.connect(stranger).settleSession(sessionId)),
      "SessionSettled",
    );
    story.say(
      `The grace period passes. A stranger settles the session: the ${usd(story, settled.fee)} fee is booked ` +
        `for the treasury,`,
    );
    story.say(
      `${usd(story, settled.refunded)} goes back to the researcher agent's wallet (its owner), and Reputation ` +
        `records ${grouped(settled.calls)} calls`,
    );
    story.say(`worth ${usd(story, settled.redeemed)} in one entry.`);
    await balances(
      story,
      [
        ["researcher's wallet (owner)", researcherOwner.address],
        ["translator's wallet", translatorWallet.address],
      ],
      { payPerUse: true },
    );
    const waiting = await pendingView(story.ctx, researcher, translator, story.usdt);
    story.say(
      `The session was recorded as it settled, but the ${grouped(waiting.receipts)} charges still wait in ` +
        `PayPerUse. The translator's`,
    );
    story.say(`wallet, which wants its calls on record, syncs the pair (anyone may):`);
    const sync = () => payPerUse.connect(translatorWallet).syncReputation(researcher, translator, story.usdt.address);
    const syncReceipt = await confirm(sync());
    const synced = findEvent(payPerUse.interface, syncReceipt, "ReputationSynced");
    story.say(
      `Reputation records ${grouped(synced.calls)} words as calls worth ${usd(story, synced.amount)} from ` +
        `${grouped(synced.receipts)} charges in one call (${grouped(syncReceipt.gasUsed)} gas),`,
    );
    story.say(`and the researcher's owner gets one right to rate the translator per charge.`);
    await refused(story, "Syncing the pair again", sync);
    const record = await reputation.getRecord(translator);
    const [rights] = await reputation.feedbackRights(translator, researcherOwner.address);
    if (rights !== (synced.receipts as bigint) + 2n) {
      throw new Error(`The researcher's owner holds ${rights} rights to rate the translator, not one per charge + 2.`);
    }
    printTable(
      [
        {
          agent: `#${translator} (translator)`,
          "calls served": grouped(record.callsServed),
          "pay-per-use settlements": grouped(record.settlementsServed),
          "USDT volume": formatAmount(await reputation.getVolume(translator, story.usdt.address), story.usdt.decimals),
          score: formatBps(await reputation.score(translator)),
        },
      ],
      { title: "   Reputation:" },
    );
    story.say(
      `The researcher's owner holds ${rights} unused rights to rate the translator: one per charge (from the sync),`,
    );
    story.say(`one for the session and one from the task hired through a signed agreement.`);
  },
};

// ------------------------------------------------------------------ court chapters

/** The court, connected to `signer` (the chapters act through the court tasks' own functions). */
async function courtAs(story: Story, signer: HardhatEthersSigner): Promise<CourtContext> {
  return courtOf({ ...story.ctx, signer, court: story.ctx.court?.connect(signer) });
}

const okb = (c: CourtContext, value: bigint) => formatAmount(value, c.asset.decimals, c.asset.symbol);

const evaluatorsStake: Chapter = {
  title: "Five evaluators stake in the court",
  async run(story) {
    const { registry } = story.ctx;
    const stakes = ["120", "100", "150", "80", "200"];
    story.say(`EvaluatorStaking is TaskEscrow's arbitrator. Evaluators are agents that stake OKB (here the native`);
    story.say(
      `coin); juries are drawn at random in proportion to stake, and every seat locks the case's minimum stake.`,
    );
    const rows = [];
    for (const [i, owner] of story.cast.evaluatorOwners.entries()) {
      const tx = registry.connect(owner)["register(string)"](`ipfs://evaluator-${i + 1}.json`);
      const agentId: bigint = findEvent(registry.interface, await confirm(tx), "Registered").agentId;
      story.court.evaluators.set(agentId, owner);
      const c = await courtAs(story, owner);
      await stakeFor(c, agentId, parseUnits(stakes[i], c.asset.decimals));
      const v = await evaluatorView(c, agentId);
      rows.push({
        evaluator: `#${agentId}`,
        owner: shortAddress(owner.address),
        staked: v.stakedText,
        weight: v.weight,
      });
    }
    story.say(`Five owners register an evaluator agent each and stake it (evaluator:stake):`);
    printTable(rows, { title: "   The pool:" });
    const c = await courtAs(story, story.cast.stranger);
    const [first] = story.court.evaluators.keys();
    await refused(story, "A stranger staking for evaluator #" + first, () =>
      stakeFor(c, first, parseUnits("10", c.asset.decimals)),
    );
  },
};

const disputeGoesToCourt: Chapter = {
  title: "A rejected task goes to the court",
  async run(story) {
    const { escrow } = story.ctx;
    const { researcherOwner, translatorWallet } = story.cast;
    const { researcher, translator } = story.agents;
    await fund(story, researcherOwner, "100");
    await fund(story, translatorWallet, "0");
    const taskId = await postTask(story, researcherOwner, {
      clientId: researcher,
      providerId: translator,
      budget: "100",
      specURI: "ipfs://legal-contract-fr.md",
    });
    const t = await escrow.getTask(taskId);
    await confirm(escrow.connect(translatorWallet).acceptTask(taskId, t.amount, t.deliveryDuration));
    await confirm(
      escrow.connect(translatorWallet).submitWork(taskId, keccakId("ipfs://contract-fr.md"), "ipfs://contract-fr.md"),
    );
    await confirm(escrow.connect(researcherOwner).reject(taskId, keccakId("ipfs://review-notes.md")));
    story.say(`The researcher posts task #${taskId} (translate a 40-page contract, 100.00 USDT); the translator`);
    story.say(`delivers and the researcher rejects the work: the legal terms are off, it says.`);
    await confirm(escrow.connect(translatorWallet).raiseDispute(taskId));
    await confirm(escrow.connect(researcherOwner).payDisputeDeposit(taskId));
    const { deposit, disputeId } = await escrow.getDispute(taskId);
    story.court = { ...story.court, taskId, caseId: disputeId };
    const c = await courtOf(story.ctx);
    const cs = await c.court.getCase(disputeId);
    story.say(
      `The translator disputes, and both parties deposit ${usd(story, deposit)} (${formatBps(t.arbitrationFeeBps)} ` +
        `of the price): TaskEscrow`,
    );
    story.say(
      `opens case #${disputeId} in the court with a ${usd(story, cs.fee)} fee. The case waits for a jury of ` +
        `${cs.params.jurySize}; each seat locks ${okb(c, cs.params.minStake)} of a juror's stake.`,
    );
  },
};

const vrfAnswers: Chapter = {
  title: "The VRF mock answers",
  async run(story) {
    const c = await courtAs(story, story.cast.stranger);
    const asked = await advanceStep(c, story.court.caseId);
    const [, epoch, , requestId] = await c.court.drawState();
    story.say(`Anyone may move the court on (dispute:advance). A stranger does: ${asked.what}, so the court`);
    story.say(`enters its Generating phase (epoch ${epoch}); stakes now wait, and the pool is frozen for the draw.`);
    story.say(`The Chainlink VRF adapter forwarded request ${requestId} to the coordinator.`);
    await refused(story, "Drawing the jury before the word arrives", () => c.court.draw(story.court.caseId, 10));
    const fulfilled = await fulfilRandomness(c);
    story.say(`On this local network the VRFCoordinatorV2_5Mock fulfils it (vrf:fulfill): the word`);
    story.say(`${fulfilled.word!.toString(16).slice(0, 16)}… reaches the court, which enters its Drawing phase.`);
  },
};

const juryDrawn: Chapter = {
  title: "The jury is drawn",
  async run(story) {
    const c = await courtAs(story, story.cast.stranger);
    const { caseId } = story.court;
    const drawn = await advanceStep(c, caseId);
    const cs = await c.court.getCase(caseId);
    const round = await c.court.getRound(caseId, cs.round);
    story.court.jurors = round.jurors.map((j) => BigInt(j));
    story.say(`The stranger draws case #${caseId}'s jury from the sum tree, in proportion to stake:`);
    for (const line of drawn.lines.filter((l) => l.startsWith("Seat"))) story.say(`  ${line}`);
    const passed = await advanceStep(c, caseId);
    story.say(`Every case of the epoch is seated, so the next step ${passed.what}: the court is back in Staking.`);
    story.say(`The jurors have until ${formatTimestamp(cs.deadline)} to commit.`);
  },
};

/** The votes of the demo's jury: two say 75% to the provider, one 50%. */
const VOTES = [3, 3, 2];

const jurorsVote: Chapter = {
  title: "The jurors commit, then reveal",
  async run(story) {
    const { caseId, jurors } = story.court;
    for (const [i, juror] of jurors.entries()) {
      const c = await courtAs(story, story.court.evaluators.get(juror)!);
      await commitVote(c, caseId, juror, VOTES[i]);
    }
    story.say(`Each juror commits keccak256(case, round, juror, choice, salt) (dispute:commit); the random salts`);
    story.say(`stay in .court-salts/ on the juror's machine, so nobody sees a vote before the reveal.`);
    story.say(`The last commit opens the reveal period. The jurors reveal from their salt files (dispute:reveal):`);
    for (const [i, juror] of jurors.entries()) {
      const c = await courtAs(story, story.court.evaluators.get(juror)!);
      const revealed = await revealVote(c, caseId, juror);
      story.say(`  juror #${juror}: ${CHOICE_SHARES[VOTES[i]]} to the provider`);
      if (i === jurors.length - 1) {
        for (const line of revealed.lines.filter((l) => l.startsWith("Round"))) story.say(line);
      }
    }
    const c = await courtOf(story.ctx);
    const cs = await c.court.getCase(caseId);
    story.say(
      `The lower median rules. Either party may appeal to a jury of 7 for ` +
        `${usd(story, await c.court.appealCost(caseId))} until ${formatTimestamp(cs.deadline)}.`,
    );
  },
};

const rulingPaid: Chapter = {
  title: "The split ruling is paid",
  async run(story) {
    const { researcherOwner, translatorWallet, stranger } = story.cast;
    const parties: [string, string][] = [
      ["researcher's wallet (owner)", researcherOwner.address],
      ["translator's wallet", translatorWallet.address],
    ];
    await balances(story, parties);
    const c = await courtAs(story, stranger);
    const { appealPeriod } = (await c.court.getCase(story.court.caseId)).params;
    await story.hre.network.provider.send("evm_increaseTime", [Number(appealPeriod)]);
    await story.hre.network.provider.send("evm_mine", []);
    story.say(`Nobody appeals. An hour later the stranger advances the case: the final ruling goes to TaskEscrow.`);
    const final = await advanceStep(c, story.court.caseId);
    for (const line of final.lines.filter((l) => l.startsWith("Final") || l.startsWith("TaskEscrow"))) {
      story.say(line);
    }
    story.say(`The deposits follow the same split; the court keeps the fee for its jurors.`);
    await balances(story, parties);
  },
};

const jurorsSettled: Chapter = {
  title: "Execute settles the jurors",
  async run(story) {
    const { caseId, jurors } = story.court;
    const c = await courtAs(story, story.cast.stranger);
    const settled = await advanceStep(c, caseId);
    story.say(`In the Staking phase anyone may settle a ruled round (execute, through dispute:advance): the juror`);
    story.say(
      `who voted against the ruling loses ${formatBps((await c.court.getCase(caseId)).params.slashMinorityBps)} of its seat's lock; the others share`,
    );
    story.say(`the fee and that slash pro rata to their stake, and Reputation records every vote.`);
    for (const line of settled.lines) story.say(`  ${line}`);
    const rows = [];
    for (const [i, juror] of jurors.entries()) {
      const v = await evaluatorView(c, juror);
      const usdtReward = v.rewards.find((r) => r.asset === "USDT");
      rows.push({
        juror: `#${juror}`,
        vote: CHOICE_SHARES[VOTES[i]],
        staked: v.stakedText,
        "OKB rewards": v.rewards[0].amountText,
        "USDT rewards": usdtReward?.amountText ?? "-",
        "votes (coherent / not)": `${v.votes.coherent} / ${v.votes.incoherent}`,
      });
    }
    printTable(rows, { title: "   The jury after settlement:" });
    const [winner] = jurors;
    const owner = story.court.evaluators.get(winner)!;
    const mine = await courtAs(story, owner);
    const usdtAddress = story.usdt.address;
    const amount = await mine.court.rewardsOf(winner, usdtAddress);
    await confirm(mine.court.claimRewards(winner, usdtAddress));
    story.say(`Juror #${winner}'s owner claims its ${usd(story, amount)} (evaluator:claim --rewards USDT); its OKB`);
    story.say(`rewards wait in the court until it claims them too.`);
    story.say(
      `Held by the court now: ${okb(c, await c.court.held(ZeroAddress))} of stakes and rewards, ` +
        `${usd(story, await c.court.held(usdtAddress))} of fees not yet claimed.`,
    );
  },
};

const summary: Chapter = {
  title: "Where things stand",
  async run(story) {
    const { registry, reputation } = story.ctx;
    const agents = [];
    for (let id = 1n; id <= (await registry.agentCount()); id++) {
      const owner = await registry.ownerOf(id);
      const wallet = await registry.getAgentWallet(id);
      agents.push({
        agent: `#${id}`,
        owner,
        wallet: wallet === owner ? "(owner)" : wallet,
        paused: !(await registry.isAgentActive(id)),
        services: (await registry.getAgentServices(id)).length,
        score: formatBps(await reputation.score(id)),
      });
    }
    printTable(agents, { title: "   Agents:" });
    printTable(await operatorPolicies(story.ctx), { title: "   Operator policies:" });
    const tasks = [];
    for (let id = 1n; id <= (await story.ctx.escrow.taskCount()); id++) {
      const t = await taskView(story.ctx, id);
      tasks.push({
        task: `#${id}`,
        mode: t.mode,
        client: `#${t.clientId}`,
        provider: t.providerId === 0n ? "-" : `#${t.providerId}`,
        status: t.status,
        amount: t.amountText,
      });
    }
    printTable(tasks, { title: "   Tasks:" });
  },
};

/** Every (agent, operator, token) policy ever set, read back from the registry's events. */
async function operatorPolicies(ctx: Context) {
  const { registry } = ctx;
  const pairs = new Map<string, { agentId: bigint; operator: string; tokens: Set<string> }>();
  for (const e of await registry.queryFilter(registry.filters.OperatorSet())) {
    pairs.set(`${e.args.agentId}:${e.args.operator}`, {
      agentId: e.args.agentId,
      operator: e.args.operator,
      tokens: new Set(),
    });
  }
  for (const e of await registry.queryFilter(registry.filters.TokenLimitSet())) {
    pairs.get(`${e.args.agentId}:${e.args.operator}`)?.tokens.add(e.args.token);
  }
  const rows = [];
  for (const { agentId, operator, tokens } of pairs.values()) {
    const view = await registry.getOperator(agentId, operator);
    for (const token of tokens.size > 0 ? tokens : [undefined]) {
      const limit = token && (await limitView(ctx, agentId, operator, token));
      rows.push({
        agent: `#${agentId}`,
        operator,
        active: view.active,
        expiry: view.expiry === 0n ? "revoked" : formatTimestamp(view.expiry),
        token: limit ? limit.symbol : "-",
        "per-tx cap": limit ? limit.perTxCapText : "-",
        "period cap": limit ? limit.periodCapText : "-",
        window: limit ? limit.window : "-",
        "available now": limit ? limit.availableText : "-",
      });
    }
  }
  return rows;
}

/** The story so far, in order. EvaluatorStaking chapters go here. */
export const CHAPTERS: Chapter[] = [
  registerAgents,
  listServices,
  agentWallet,
  operatorKey,
  spending,
  reputation,
  bidding,
  agreement,
  autoMatch,
  closedWhileOpen,
  timesOut,
  payPerCall,
  facilitated,
  session,
  evaluatorsStake,
  disputeGoesToCourt,
  vrfAnswers,
  juryDrawn,
  jurorsVote,
  rulingPaid,
  jurorsSettled,
  summary,
];

// ------------------------------------------------------------------ the task

function hex(text: string): string {
  return "0x" + Buffer.from(text, "utf8").toString("hex");
}

task("market:demo", "Tells the marketplace's story so far on the in-process network").setAction(
  withPlainErrors(async (_args, hre) => {
    if (hre.network.name !== "hardhat") {
      throw new Error(
        "market:demo runs only on the in-process hardhat network (it mints test tokens and moves the clock).",
      );
    }
    const ctx = await getContext(hre, undefined, { fresh: true });
    // Start the story at the next 06:00 UTC, so its one-hour jump never crosses midnight, where
    // the fixed 24h spending windows turn over (the clock only moves forward).
    const latest = (await hre.ethers.provider.getBlock("latest"))!.timestamp;
    const sixAm = Math.floor(latest / 86_400) * 86_400 + 6 * 3_600;
    await hre.network.provider.send("evm_setNextBlockTimestamp", [sixAm > latest ? sixAm : sixAm + 86_400]);
    await hre.network.provider.send("evm_mine", []);
    const signers = await hre.ethers.getSigners();
    const [admin, translatorOwner, researcherOwner, coderOwner, translatorWallet, hotKey] = signers;
    const [facilitator, stranger, coderKey] = [signers[7], signers[8], signers[9]];
    const cast: Cast = {
      admin,
      translatorOwner,
      researcherOwner,
      coderOwner,
      translatorWallet,
      hotKey,
      coderKey,
      stranger,
      facilitator,
      evaluatorOwners: signers.slice(10, 15),
    };
    const usdt = await describeToken(ctx, ctx.addresses.tokens.USDT!);
    const names: Record<string, string> = {
      [hotKey.address]: "the researcher's hot key",
      [coderKey.address]: "the coder's hot key",
      [stranger.address]: "a stranger",
      [facilitator.address]: "the facilitator",
      [translatorWallet.address]: "the translator's wallet",
      [researcherOwner.address]: "the researcher's owner",
    };
    const story: Story = {
      hre,
      ctx,
      cast,
      usdt,
      agents: { translator: 0n, researcher: 0n, coder: 0n },
      tasks: { first: 0n, second: 0n, silent: 0n },
      ppuService: 0n,
      court: { evaluators: new Map(), taskId: 0n, caseId: 0n, jurors: [] },
      words: { decimals: usdt.decimals, symbol: "USDT", tokens: { [usdt.address]: usdt }, names },
      say: (line) => console.log(`   ${line}`),
    };
    console.log("Agent Market demo (in-process network; System and Mocks deployed with Hardhat Ignition)");
    console.log(
      `   AgentRegistry ${ctx.addresses.registry}, Reputation ${ctx.addresses.reputation}, USDT ${usdt.address}`,
    );
    const [, , treasury, , feeBps] = await ctx.escrow.config();
    console.log(
      `   TaskEscrow ${ctx.addresses.escrow} (${formatBps(feeBps)} protocol fee; treasury ${shortAddress(treasury)})`,
    );
    const [, , , ppuFeeBps, closeGrace] = await ctx.payPerUse.config();
    console.log(
      `   PayPerUse ${ctx.addresses.payPerUse} (${formatBps(ppuFeeBps)} protocol fee; ${formatPeriod(closeGrace)} ` +
        `grace to close a session)`,
    );
    if (ctx.court) {
      const p = await ctx.court.params();
      console.log(
        `   Court (EvaluatorStaking) ${ctx.addresses.court} (jury of ${p.jurySize}, ${formatPeriod(p.commitPeriod)} to ` +
          `commit, ${formatPeriod(p.revealPeriod)} to reveal, ${formatPeriod(p.appealPeriod)} to appeal; VRF mock ` +
          `${shortAddress(ctx.addresses.vrfCoordinator ?? ZeroAddress)})`,
      );
    }
    for (const [i, chapter] of CHAPTERS.entries()) {
      console.log(`\n${i + 1}. ${chapter.title}`);
      await chapter.run(story);
    }
    console.log("\nThe end.");
  }),
);
