// market:demo — the marketplace so far, told in numbered chapters on the in-process network.
// Later chapters (TaskEscrow, PayPerUse, EvaluatorStaking) slot into CHAPTERS below.
import { ZeroAddress, ZeroHash, id as keccakId, parseUnits } from "ethers";
import { task } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { limitView, serviceRows } from "./agent";
import {
  type Context,
  type TokenInfo,
  chainNow,
  confirm,
  describeToken,
  findEvent,
  formatAmount,
  formatBps,
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
  paymentDesk: HardhatEthersSigner; // stands in for TaskEscrow / PayPerUse (SPENDER_ROLE)
  reporter: HardhatEthersSigner; // stands in for TaskEscrow (REPORTER_ROLE)
  stranger: HardhatEthersSigner;
}

/** What the chapters share; each chapter may add to `agents`. */
interface Story {
  hre: HardhatRuntimeEnvironment;
  ctx: Context;
  cast: Cast;
  usdt: TokenInfo;
  agents: { translator: bigint; researcher: bigint; coder: bigint };
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

const spending: Chapter = {
  title: "The hot key spends, and the policy holds",
  async run(story) {
    const { registry } = story.ctx;
    const { admin, researcherOwner, hotKey, paymentDesk } = story.cast;
    const { researcher, translator, coder } = story.agents;
    const token = story.usdt.address;
    const [forty, ten] = [units(story, "40"), units(story, "10")];
    await confirm(registry.connect(admin).grantRole(keccakId("SPENDER_ROLE"), paymentDesk.address));
    story.say(`TaskEscrow and PayPerUse are not built yet. A stand-in "payment desk" account`);
    story.say(`(${shortAddress(paymentDesk.address)}) receives SPENDER_ROLE and checks each spend with consumeSpend,`);
    story.say(`exactly as those contracts will before they move any money (no tokens move in this demo).`);
    const desk = registry.connect(paymentDesk);
    const spend = (amount: bigint, counterparty: bigint) =>
      confirm(desk.consumeSpend(researcher, hotKey.address, token, amount, counterparty));
    for (const n of [1, 2]) {
      await spend(forty, translator);
      const left = await registry.availableToSpend(researcher, hotKey.address, token);
      story.say(
        `Spend ${n}: ${usd(story, forty)} to the translator: accepted; its next payment may be up to ${usd(story, left)}.`,
      );
    }
    await refused(story, `Spend 3: ${usd(story, forty)} to the translator`, () => spend(forty, translator));
    await refused(story, `Spend 4: ${usd(story, ten)} to the coder (#${coder})`, () => spend(ten, coder));
    await confirm(registry.connect(researcherOwner).revokeOperator(researcher, hotKey.address));
    story.say(`The owner revokes the hot key.`);
    await refused(story, `Spend 5: ${usd(story, ten)} to the translator`, () => spend(ten, translator));

    const { coderKey } = story.cast;
    const score = formatBps(await story.ctx.reputation.score(translator));
    await confirm(desk.consumeSpend(story.agents.coder, coderKey.address, token, units(story, "25"), translator));
    story.say(`Meanwhile the coder's hot key pays the translator (score ${score}) 25.00 USDT: accepted.`);
  },
};

const reputation: Chapter = {
  title: "A completed task earns a rating",
  async run(story) {
    const { reputation } = story.ctx;
    const { admin, researcherOwner, reporter, stranger } = story.cast;
    const { researcher, translator } = story.agents;
    const price = units(story, "80");
    await confirm(reputation.connect(admin).grantRole(keccakId("REPORTER_ROLE"), reporter.address));
    story.say(`TaskEscrow is not built yet either. A stand-in reporter account (${shortAddress(reporter.address)})`);
    story.say(`receives REPORTER_ROLE and records what TaskEscrow will record at settlement:`);
    const COMPLETED = 0;
    await confirm(
      reputation.connect(reporter).recordTask(researcher, translator, COMPLETED, story.usdt.address, price),
    );
    story.say(
      `the researcher (#${researcher}) hired the translator (#${translator}); the task completed for ${usd(story, price)}.`,
    );
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

/** The story so far, in order. TaskEscrow, PayPerUse and EvaluatorStaking chapters go here. */
export const CHAPTERS: Chapter[] = [
  registerAgents,
  listServices,
  agentWallet,
  operatorKey,
  spending,
  reputation,
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
        "market:demo runs only on the in-process hardhat network (it grants roles to stand-in accounts).",
      );
    }
    const ctx = await getContext(hre, undefined, { fresh: true });
    const signers = await hre.ethers.getSigners();
    const [
      admin,
      translatorOwner,
      researcherOwner,
      coderOwner,
      translatorWallet,
      hotKey,
      paymentDesk,
      reporter,
      stranger,
    ] = signers;
    const coderKey = signers[9];
    const cast: Cast = {
      admin,
      translatorOwner,
      researcherOwner,
      coderOwner,
      translatorWallet,
      hotKey,
      coderKey,
      paymentDesk,
      reporter,
      stranger,
    };
    const usdt = await describeToken(ctx, ctx.addresses.tokens.USDT!);
    const names: Record<string, string> = {
      [hotKey.address]: "the researcher's hot key",
      [coderKey.address]: "the coder's hot key",
      [stranger.address]: "a stranger",
      [paymentDesk.address]: "the payment desk",
    };
    const story: Story = {
      hre,
      ctx,
      cast,
      usdt,
      agents: { translator: 0n, researcher: 0n, coder: 0n },
      words: { decimals: usdt.decimals, symbol: "USDT", tokens: { [usdt.address]: usdt }, names },
      say: (line) => console.log(`   ${line}`),
    };
    console.log("Agent Market demo (in-process network; System and Mocks deployed with Hardhat Ignition)");
    console.log(
      `   AgentRegistry ${ctx.addresses.registry}, Reputation ${ctx.addresses.reputation}, USDT ${usdt.address}`,
    );
    for (const [i, chapter] of CHAPTERS.entries()) {
      console.log(`\n${i + 1}. ${chapter.title}`);
      await chapter.run(story);
    }
    console.log("\nThe end (for now): TaskEscrow, PayPerUse and EvaluatorStaking chapters come next.");
  }),
);
