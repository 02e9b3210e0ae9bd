// task:* — the task hall (TaskEscrow): post a task, assign a provider (direct, bidding, auto-match
// or a signed agreement), deliver, review, dispute, time out and collect.
import * as fs from "node:fs";
import { ZeroHash, getAddress, hexlify, id as keccakId, isHexString, randomBytes, zeroPadBytes } from "ethers";
import { task, types } from "hardhat/config";
import type { ContractTransactionReceipt, ContractTransactionResponse } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import {
  type CommonArgs,
  type Context,
  type TokenInfo,
  TASK_MODES,
  capabilityLabel,
  chainNow,
  confirm,
  describeToken,
  findEvent,
  formatAmount,
  formatBps,
  formatPeriod,
  formatTimestamp,
  getContext,
  output,
  parseAmount,
  parseCapability,
  parseIds,
  parsePeriod,
  printFields,
  printTable,
  resolveSigner,
  resolveToken,
  taskStatusName,
  withCommonParams,
  AGREEMENT_TYPES,
} from "./lib/context";
import { type ExplainOptions, PlainError, plainly, withPlainErrors } from "./lib/errors";
import { withdrawTask } from "./lib/withdraw";

/** ITaskEscrow.Agreement. */
export interface Agreement {
  clientId: bigint;
  providerId: bigint;
  token: string;
  price: bigint;
  deliveryDuration: bigint;
  reviewPeriod: bigint;
  parentTaskId: bigint;
  specHash: string;
  nonce: bigint;
  expiry: bigint;
}

/** What `task:agree --sign` prints and `task:agree --submit` reads. */
export interface SignedAgreement {
  agreement: Agreement;
  capability: string;
  specURI: string;
  signer: string;
  signature: string;
}

const OPEN = 1n;
const ACCEPTED = 2n;
const DISPUTED = 6n;
const FIRST_TERMINAL = 8n; // Completed
const BPS = 10_000n;

/** What the deadline of each state means. */
const DEADLINE_LABELS: Record<string, string> = {
  Open: "acceptance deadline",
  Accepted: "delivery deadline",
  CancelRequested: "deadline to answer the cancellation",
  Submitted: "review deadline",
  Rejected: "deadline to refund or dispute",
  Disputed: "deadline of the client's deposit",
  Arbitration: "arbitration timeout",
};

// ------------------------------------------------------------------ helpers

type TaskView = Awaited<ReturnType<Context["escrow"]["getTask"]>>;

interface Loaded {
  id: bigint;
  t: TaskView;
  token: TokenInfo;
  /** Error wording in the task's token. */
  words: ExplainOptions;
}

function tokenWords(token: TokenInfo): ExplainOptions {
  return { decimals: token.decimals, symbol: token.symbol, tokens: { [token.address]: token } };
}

/** A task, or a plain error when there is none. */
async function loadTask(ctx: Context, taskId: bigint): Promise<Loaded> {
  const t = await ctx.escrow.getTask(taskId);
  if (t.status === 0n) throw new PlainError(`Task #${taskId} does not exist.`);
  const token = await describeToken(ctx, t.token);
  return { id: taskId, t, token, words: tokenWords(token) };
}

/** The price the provider of an open task would get now. */
function currentOffer(t: TaskView): bigint {
  return t.offer !== 0n ? t.offer : t.amount;
}

/** Sends a transaction, explaining a refusal with amounts in the task's token. */
function send(words: ExplainOptions, tx: () => Promise<ContractTransactionResponse>) {
  return plainly(() => confirm(tx()), words);
}

/** Approves the escrow for `amount` of `token` when the signer's allowance is short; true when it did. */
async function ensureAllowance(ctx: Context, token: TokenInfo, amount: bigint): Promise<boolean> {
  if (amount === 0n) return false;
  const { IERC20Metadata__factory } = await import("../typechain-types");
  const erc20 = IERC20Metadata__factory.connect(token.address, ctx.signer);
  if ((await erc20.allowance(ctx.signer.address, ctx.addresses.escrow)) >= amount) return false;
  await send(tokenWords(token), () => erc20.approve(ctx.addresses.escrow, amount));
  return true;
}

/** A 32-byte hash given as 0x-hex, or the keccak256 of a text. */
function parseHash(value: string | undefined): string {
  if (value === undefined || value === "") return ZeroHash;
  return isHexString(value, 32) ? value.toLowerCase() : keccakId(value);
}

function parseMode(value: string): number {
  const mode = TASK_MODES.indexOf(value.toLowerCase().replace(/-?match$/, "") as (typeof TASK_MODES)[number]);
  if (mode < 0) throw new PlainError(`Unknown mode "${value}": use direct, bidding or auto.`);
  return mode;
}

/** A duration within uint32 (the contract checks the real bounds, 1h to 365d). */
function parseDuration(value: string): number {
  const seconds = parsePeriod(value);
  if (seconds > 0xffffffff) throw new PlainError(`A duration of ${value} is too long.`);
  return seconds;
}

/** The task's events in `receipt`, as sentences (and the settlement, when there is one). */
function describeReceipt(ctx: Context, loaded: Loaded, receipt: ContractTransactionReceipt) {
  const escrow = getAddress(ctx.addresses.escrow);
  const amount = (value: bigint) => formatAmount(value, loaded.token.decimals, loaded.token.symbol);
  const lines: string[] = [];
  let status: string | undefined;
  let settlement: { toProvider: bigint; toClient: bigint; fee: bigint } | undefined;
  for (const log of receipt.logs) {
    if (getAddress(log.address) !== escrow) continue;
    const parsed = ctx.escrow.interface.parseLog(log);
    if (!parsed) continue;
    const a = parsed.args;
    switch (parsed.name) {
      case "TaskStateChanged":
        status = taskStatusName(a.to);
        lines.push(`Task #${a.taskId}: ${taskStatusName(a.from)} → ${status}.`);
        break;
      case "TaskAssigned":
        lines.push(
          `Agent #${a.providerId} works on it for ${amount(a.price)}; delivery due by ${formatTimestamp(a.deadline)}.`,
        );
        break;
      case "TaskSettled":
        settlement = { toProvider: a.toProvider, toClient: a.toClient, fee: a.fee };
        lines.push(
          `Settled: ${amount(a.toProvider)} to the provider, ${amount(a.toClient)} to the client, ` +
            `${amount(a.fee)} protocol fee.`,
        );
        break;
      case "DisputeRaised":
        lines.push(`Dispute raised with arbitrator ${a.arbitrator}; the provider deposited ${amount(a.deposit)}.`);
        break;
      case "Dispute":
        lines.push(`Both parties deposited: dispute ${a.disputeId} is with the arbitrator ${a.arbitrator}.`);
        break;
      case "DepositsReturned":
        lines.push(
          `Dispute deposits returned: ${amount(a.toProvider)} to the provider, ${amount(a.toClient)} to the client.`,
        );
        break;
      case "PaymentCredited":
        lines.push(
          `A payment of ${amount(a.amount)} to ${a.account} failed; it is credited there (collect with task:withdraw).`,
        );
        break;
    }
  }
  return { status, settlement, lines };
}

/** Loads the task, runs one transaction on it and reports what happened (plus `after`'s lines). */
async function act(
  hre: HardhatRuntimeEnvironment,
  args: CommonArgs & { task: bigint },
  what: string | ((loaded: Loaded) => string),
  tx: (ctx: Context, loaded: Loaded) => Promise<ContractTransactionResponse>,
  hooks: {
    before?: (ctx: Context, loaded: Loaded) => Promise<void>;
    after?: (ctx: Context, loaded: Loaded) => Promise<string[]>;
  } = {},
) {
  const ctx = await getContext(hre, args.from);
  const loaded = await loadTask(ctx, args.task);
  if (hooks.before) await hooks.before(ctx, loaded);
  const receipt = await send(loaded.words, () => tx(ctx, loaded));
  const described = describeReceipt(ctx, loaded, receipt);
  const events = [...described.lines, ...(hooks.after ? await hooks.after(ctx, loaded) : [])];
  const status = taskStatusName((await ctx.escrow.getTask(args.task)).status);
  const action = typeof what === "string" ? what : what(loaded);
  const data = { taskId: args.task, action, status, settlement: described.settlement, events, tx: receipt.hash };
  return output(hre, args.json, data, (d) => {
    console.log(`Task #${d.taskId}: ${d.action}.`);
    for (const line of d.events) console.log(`  ${line}`);
  });
}

type TaskArgs = CommonArgs & { task: bigint };

/** A task definition with `--task`, `--from` and `--json`. */
function taskDef(name: string, description: string) {
  return withCommonParams(task(name, description).addParam("task", "Task id", undefined, types.bigint));
}

// ------------------------------------------------------------------ task:create

interface CreateArgs extends CommonArgs {
  client: bigint;
  mode: string;
  provider?: bigint;
  token: string;
  budget: string;
  maxBudget?: string;
  acceptIn: string;
  delivery: string;
  review: string;
  minScore: number;
  parent?: bigint;
  capability?: string;
  specUri: string;
  specHash?: string;
}

withCommonParams(
  task("task:create", "Posts a task and locks its maximum budget (approves the escrow first when needed)")
    .addParam("client", "Client agent id (the signer pays for it)", undefined, types.bigint)
    .addOptionalParam("mode", "direct | bidding | auto", "direct", types.string)
    .addOptionalParam("provider", "direct: the agent to hire", undefined, types.bigint)
    .addOptionalParam("token", "Payment token: USDT, USDG or an address", "USDT", types.string)
    .addParam("budget", "Offered price in token units (bidding: indicative), e.g. 50", undefined, types.string)
    .addOptionalParam(
      "maxBudget",
      "Amount locked now; bids and proposals may go up to it (default: budget)",
      undefined,
      types.string,
    )
    .addOptionalParam("acceptIn", "How long providers may take it: seconds or 90s / 45m / 2h / 3d", "1d", types.string)
    .addOptionalParam("delivery", "Delivery time once assigned (e.g. 2d)", "2d", types.string)
    .addOptionalParam("review", "Review period and every response window (e.g. 1d)", "1d", types.string)
    .addOptionalParam("minScore", "Minimum provider score in bps (4000 = 40.00%; 0 = any)", 0, types.int)
    .addOptionalParam("parent", "Parent task (one the client agent works on as provider)", undefined, types.bigint)
    .addOptionalParam(
      "capability",
      "Capability (required for auto): a string (keccak256) or 0x-hex",
      undefined,
      types.string,
    )
    .addOptionalParam("specUri", "Where the specification is", "", types.string)
    .addOptionalParam(
      "specHash",
      "Hash of the specification: 0x-hex, or a text to hash (default: keccak256 of the URI)",
      undefined,
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: CreateArgs, hre) => {
    const mode = parseMode(args.mode);
    if (mode === 0 && args.provider === undefined)
      throw new PlainError("A direct task needs --provider (the agent to hire).");
    if (mode !== 0 && args.provider !== undefined) {
      throw new PlainError(`Only direct tasks name a provider; a ${TASK_MODES[mode]} task finds one itself.`);
    }
    if (mode === 2 && !args.capability) throw new PlainError("An auto-match task needs --capability.");
    const ctx = await getContext(hre, args.from);
    const token = await resolveToken(ctx, args.token);
    const words = tokenWords(token);
    const budget = parseAmount(args.budget, token.decimals);
    const maxBudget = parseAmount(args.maxBudget ?? args.budget, token.decimals);
    const acceptDeadline = (await chainNow(hre)) + BigInt(parsePeriod(args.acceptIn));
    const params = {
      clientId: args.client,
      providerId: args.provider ?? 0n,
      mode,
      token: token.address,
      budget,
      maxBudget,
      acceptDeadline,
      deliveryDuration: parseDuration(args.delivery),
      reviewPeriod: parseDuration(args.review),
      minScoreBps: args.minScore,
      parentTaskId: args.parent ?? 0n,
      capability: args.capability ? parseCapability(args.capability) : ZeroHash,
      specHash: args.specHash !== undefined ? parseHash(args.specHash) : keccakId(args.specUri),
      specURI: args.specUri,
    };
    const approved = await ensureAllowance(ctx, token, maxBudget);
    const receipt = await send(words, () => ctx.escrow.postTask(params));
    const taskId: bigint = findEvent(ctx.escrow.interface, receipt, "TaskPosted").taskId;
    const data = {
      taskId,
      mode: TASK_MODES[mode],
      clientId: args.client,
      providerId: params.providerId,
      token: token.symbol,
      budget: formatAmount(budget, token.decimals, token.symbol),
      locked: formatAmount(maxBudget, token.decimals, token.symbol),
      acceptDeadline: formatTimestamp(acceptDeadline),
      capability: params.capability === ZeroHash ? undefined : capabilityLabel(params.capability),
      approved,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved the escrow to take ${d.locked} from ${ctx.signer.address}.`);
      const who =
        d.mode === "direct"
          ? `for agent #${d.providerId}`
          : d.mode === "auto"
            ? `for any agent listing ${d.capability}`
            : "open to bids";
      console.log(
        `Posted task #${d.taskId} (${d.mode}, ${who}): ${d.locked} locked, offer ${d.budget}; ` +
          `it may be taken until ${d.acceptDeadline}.`,
      );
    });
  }),
);

// ------------------------------------------------------------------ assignment

taskDef("task:bid", "Places (or replaces) a provider's bid on a bidding task, or withdraws it")
  .addParam("provider", "Bidding agent id", undefined, types.bigint)
  .addOptionalParam("price", "Price asked, in token units", undefined, types.string)
  .addOptionalParam("eta", "Delivery time offered (default: the task's delivery time)", undefined, types.string)
  .addOptionalParam("proposal", "The proposal: 0x-hex hash, or a text to hash", undefined, types.string)
  .addFlag("withdraw", "Withdraw the bid instead")
  .setAction(
    withPlainErrors(
      async (
        args: TaskArgs & { provider: bigint; price?: string; eta?: string; proposal?: string; withdraw: boolean },
        hre,
      ) => {
        if (!args.withdraw && args.price === undefined) throw new PlainError("A bid needs --price (or --withdraw).");
        const what = args.withdraw
          ? `agent #${args.provider} withdrew its bid`
          : `agent #${args.provider} placed a bid`;
        return act(
          hre,
          args,
          what,
          (ctx, { t, token }) =>
            args.withdraw
              ? ctx.escrow.withdrawBid(args.task, args.provider)
              : ctx.escrow.placeBid(
                  args.task,
                  args.provider,
                  parseAmount(args.price!, token.decimals),
                  args.eta !== undefined ? parseDuration(args.eta) : t.deliveryDuration,
                  parseHash(args.proposal),
                ),
          {
            after: async (ctx, { token }) => {
              if (args.withdraw) return [];
              const bid = await ctx.escrow.getBid(args.task, args.provider);
              return [
                `Bid: ${formatAmount(bid.price, token.decimals, token.symbol)}, delivery in ${formatPeriod(bid.eta)}.`,
              ];
            },
          },
        );
      },
    ),
  );

taskDef("task:select", "The client selects a provider's bid (at the bid's current price, ETA and proposal)")
  .addParam("provider", "Agent whose bid to select", undefined, types.bigint)
  .addOptionalParam(
    "proposal",
    "The proposal the client chose: 0x-hex hash, or the text the provider hashed (default: the bid's current one); " +
      "refused if the bid now carries another",
    undefined,
    types.string,
  )
  .setAction(
    withPlainErrors(async (args: TaskArgs & { provider: bigint; proposal?: string }, hre) =>
      act(hre, args, `the client selected agent #${args.provider}'s bid`, async (ctx) => {
        const bid = await ctx.escrow.getBid(args.task, args.provider);
        // The escrow keeps the first 16 bytes of the proposal hash and compares only those.
        const proposal = args.proposal !== undefined ? parseHash(args.proposal) : zeroPadBytes(bid.proposal, 32);
        return ctx.escrow.selectBid(args.task, args.provider, bid.price, bid.eta, proposal);
      }),
    ),
  );

taskDef("task:claim", "A provider claims an open auto-match task at its budget, with a service listing the capability")
  .addParam("provider", "Claiming agent id", undefined, types.bigint)
  .addParam("service", "The provider's active service that lists the task's capability", undefined, types.bigint)
  .setAction(
    withPlainErrors(async (args: TaskArgs & { provider: bigint; service: bigint }, hre) =>
      act(hre, args, `agent #${args.provider} claimed it with service #${args.service}`, (ctx) =>
        ctx.escrow.claimTask(args.task, args.provider, args.service),
      ),
    ),
  );

taskDef("task:accept", "The named provider accepts a direct task at its current terms").setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the provider accepted", (ctx, { t }) =>
      ctx.escrow.acceptTask(args.task, currentOffer(t), t.deliveryDuration),
    ),
  ),
);

taskDef("task:decline", "The named provider declines a direct task (full refund to the client)").setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the provider declined", (ctx) => ctx.escrow.declineTask(args.task)),
  ),
);

taskDef("task:propose", "Negotiates a direct task: the client proposes, the provider counters, the client accepts")
  .addOptionalParam("as", "client (proposeTerms) or provider (counterPropose)", "client", types.string)
  .addOptionalParam("price", "Proposed price, in token units", undefined, types.string)
  .addOptionalParam("delivery", "Proposed delivery time (default: the task's current one)", undefined, types.string)
  .addFlag("acceptCounter", "Client: accept the provider's pending counter-proposal")
  .setAction(
    withPlainErrors(
      async (args: TaskArgs & { as: string; price?: string; delivery?: string; acceptCounter: boolean }, hre) => {
        if (args.acceptCounter) {
          return act(hre, args, "the client accepted the provider's counter-proposal", async (ctx) => {
            const counter = await ctx.escrow.getCounter(args.task);
            return ctx.escrow.acceptCounter(args.task, counter.price, counter.deliveryDuration);
          });
        }
        if (args.as !== "client" && args.as !== "provider") {
          throw new PlainError(`Unknown side "${args.as}": use --as client or --as provider.`);
        }
        if (args.price === undefined) throw new PlainError("A proposal needs --price (or --accept-counter).");
        const byClient = args.as === "client";
        return act(
          hre,
          args,
          byClient ? "the client proposed new terms" : "the provider counter-proposed",
          (ctx, { t, token }) => {
            const price = parseAmount(args.price!, token.decimals);
            const delivery = args.delivery !== undefined ? parseDuration(args.delivery) : t.deliveryDuration;
            return byClient
              ? ctx.escrow.proposeTerms(args.task, price, delivery)
              : ctx.escrow.counterPropose(args.task, price, delivery);
          },
          {
            after: async (ctx, { token }) => {
              const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
              const t = await ctx.escrow.getTask(args.task);
              if (byClient)
                return [`Offer now: ${amount(currentOffer(t))}, delivery in ${formatPeriod(t.deliveryDuration)}.`];
              const c = await ctx.escrow.getCounter(args.task);
              return [`Counter-proposal: ${amount(c.price)}, delivery in ${formatPeriod(c.deliveryDuration)}.`];
            },
          },
        );
      },
    ),
  );

// ------------------------------------------------------------------ task:agree

interface AgreeArgs extends CommonArgs {
  sign: boolean;
  submit: boolean;
  signer?: string;
  agreement?: string;
  client?: bigint;
  provider?: bigint;
  token: string;
  price?: string;
  delivery: string;
  review: string;
  parent?: bigint;
  capability?: string;
  specUri: string;
  specHash?: string;
  nonce?: bigint;
  expiresIn: string;
}

/** Signs an Agreement in the escrow's EIP-712 domain. */
export async function signAgreementTerms(
  ctx: Context,
  signer: Awaited<ReturnType<typeof resolveSigner>>,
  agreement: Agreement,
): Promise<string> {
  const { chainId } = await ctx.hre.ethers.provider.getNetwork();
  const domain = { name: "TaskEscrow", version: "1", chainId, verifyingContract: ctx.addresses.escrow };
  return signer.signTypedData(domain, AGREEMENT_TYPES, agreement);
}

/** A signed agreement from JSON text or a file holding it. */
function readSignedAgreement(value: string): SignedAgreement {
  let text = value.trim();
  if (!text.startsWith("{")) {
    if (!fs.existsSync(text)) throw new PlainError(`--agreement is neither JSON nor a file: "${value}".`);
    text = fs.readFileSync(text, "utf8");
  }
  let raw: {
    agreement?: Record<string, string>;
    capability?: string;
    specURI?: string;
    signer?: string;
    signature?: string;
  };
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PlainError("The agreement is not valid JSON (expected what task:agree --sign prints).");
  }
  const a = raw.agreement;
  if (!a || !a.token || !a.specHash || !raw.signer || !raw.signature) {
    throw new PlainError(
      "The agreement JSON lacks agreement, signer or signature (expected what task:agree --sign prints).",
    );
  }
  const big = (key: string) => {
    if (a[key] === undefined) throw new PlainError(`The agreement lacks ${key}.`);
    return BigInt(a[key]);
  };
  return {
    agreement: {
      clientId: big("clientId"),
      providerId: big("providerId"),
      token: getAddress(a.token),
      price: big("price"),
      deliveryDuration: big("deliveryDuration"),
      reviewPeriod: big("reviewPeriod"),
      parentTaskId: big("parentTaskId"),
      specHash: a.specHash,
      nonce: big("nonce"),
      expiry: big("expiry"),
    },
    capability: raw.capability ?? ZeroHash,
    specURI: raw.specURI ?? "",
    signer: getAddress(raw.signer),
    signature: raw.signature,
  };
}

withCommonParams(
  task("task:agree", "Direct hire by signed agreement: the provider signs terms, the client submits them")
    .addFlag("sign", "Sign the terms with the provider's key and print them as JSON")
    .addFlag("submit", "Submit signed terms as the client (--from pays): the task is created, funded and assigned")
    .addOptionalParam(
      "signer",
      "Provider key that signs (index or address; default: --from, or with --submit the provider's owner)",
      undefined,
      types.string,
    )
    .addOptionalParam(
      "agreement",
      "--submit alone: the JSON task:agree --sign printed, or a file holding it",
      undefined,
      types.string,
    )
    .addOptionalParam("client", "Client agent id", undefined, types.bigint)
    .addOptionalParam("provider", "Provider agent id", undefined, types.bigint)
    .addOptionalParam("token", "Payment token: USDT, USDG or an address", "USDT", types.string)
    .addOptionalParam("price", "Price, in token units", undefined, types.string)
    .addOptionalParam("delivery", "Delivery time (e.g. 2d)", "2d", types.string)
    .addOptionalParam("review", "Review period (e.g. 1d)", "1d", types.string)
    .addOptionalParam("parent", "Parent task id (0 = none)", undefined, types.bigint)
    .addOptionalParam("capability", "Capability, a string (keccak256) or 0x-hex (informative)", undefined, types.string)
    .addOptionalParam("specUri", "Where the specification is", "", types.string)
    .addOptionalParam(
      "specHash",
      "Specification hash: 0x-hex or a text to hash (default: keccak256 of the URI)",
      undefined,
      types.string,
    )
    .addOptionalParam("nonce", "Agreement nonce (default: random; single-use per provider)", undefined, types.bigint)
    .addOptionalParam("expiresIn", "How long the signature stays valid (e.g. 1h)", "1h", types.string),
).setAction(
  withPlainErrors(async (args: AgreeArgs, hre) => {
    if (!args.sign && !args.submit) throw new PlainError("Give --sign, --submit or both.");
    const ctx = await getContext(hre, args.from);
    let signed: SignedAgreement;
    if (args.sign) {
      if (args.client === undefined || args.provider === undefined || args.price === undefined) {
        throw new PlainError("Signing needs --client, --provider and --price.");
      }
      const token = await resolveToken(ctx, args.token);
      const signerRef = args.signer ?? (args.submit ? await ctx.registry.ownerOf(args.provider) : args.from);
      const signer = await resolveSigner(hre, signerRef);
      if (!(await ctx.registry.canAct(args.provider, signer.address))) {
        throw new PlainError(
          `${signer.address} may not act for agent #${args.provider}, so its signature would not bind it.`,
        );
      }
      const agreement: Agreement = {
        clientId: args.client,
        providerId: args.provider,
        token: token.address,
        price: parseAmount(args.price, token.decimals),
        deliveryDuration: BigInt(parseDuration(args.delivery)),
        reviewPeriod: BigInt(parseDuration(args.review)),
        parentTaskId: args.parent ?? 0n,
        specHash: args.specHash !== undefined ? parseHash(args.specHash) : keccakId(args.specUri),
        nonce: args.nonce ?? BigInt(hexlify(randomBytes(6))),
        expiry: (await chainNow(hre)) + BigInt(parsePeriod(args.expiresIn)),
      };
      const signature = await signAgreementTerms(ctx, signer, agreement);
      signed = {
        agreement,
        capability: args.capability ? parseCapability(args.capability) : ZeroHash,
        specURI: args.specUri,
        signer: signer.address,
        signature,
      };
      if (!args.submit) return output(hre, true, signed, () => undefined);
    } else {
      if (!args.agreement)
        throw new PlainError("--submit alone needs --agreement (the JSON task:agree --sign printed).");
      signed = readSignedAgreement(args.agreement);
    }
    const a = signed.agreement;
    const token = await describeToken(ctx, a.token);
    const words = tokenWords(token);
    const approved = await ensureAllowance(ctx, token, a.price);
    const receipt = await send(words, () =>
      ctx.escrow.hireWithAgreement(a, signed.capability, signed.specURI, signed.signer, signed.signature),
    );
    const taskId: bigint = findEvent(ctx.escrow.interface, receipt, "TaskPosted").taskId;
    const t = await ctx.escrow.getTask(taskId);
    const data = {
      taskId,
      clientId: a.clientId,
      providerId: a.providerId,
      price: formatAmount(a.price, token.decimals, token.symbol),
      status: taskStatusName(t.status),
      deliveryDeadline: formatTimestamp(t.deadline),
      signer: signed.signer,
      nonce: a.nonce,
      approved,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved the escrow to take ${d.price} from ${ctx.signer.address}.`);
      console.log(
        `Hired agent #${d.providerId} for agent #${d.clientId} on its signed terms (nonce ${d.nonce}): task #${d.taskId}, ` +
          `${d.price}, ${d.status}; delivery due by ${d.deliveryDeadline}.`,
      );
    });
  }),
);

// ------------------------------------------------------------------ delivery and review

taskDef("task:submit", "The provider delivers")
  .addOptionalParam("uri", "Where the deliverable is", "", types.string)
  .addOptionalParam(
    "hash",
    "Deliverable hash: 0x-hex or a text to hash (default: keccak256 of the URI)",
    undefined,
    types.string,
  )
  .setAction(
    withPlainErrors(async (args: TaskArgs & { uri: string; hash?: string }, hre) =>
      act(hre, args, "the provider delivered", (ctx) =>
        ctx.escrow.submitWork(args.task, args.hash !== undefined ? parseHash(args.hash) : keccakId(args.uri), args.uri),
      ),
    ),
  );

taskDef("task:approve", "The client approves the delivery: the provider is paid").setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the client approved the delivery", (ctx) => ctx.escrow.approve(args.task)),
  ),
);

taskDef("task:reject", "The client rejects the delivery within the review period")
  .addOptionalParam("reason", "Reason: 0x-hex hash, or a text to hash", undefined, types.string)
  .setAction(
    withPlainErrors(async (args: TaskArgs & { reason?: string }, hre) =>
      act(
        hre,
        args,
        "the client rejected the delivery",
        (ctx) => ctx.escrow.reject(args.task, parseHash(args.reason)),
        {
          after: async (ctx) => [
            `The provider may refund (task:refund) or dispute (task:dispute) until ` +
              `${formatTimestamp((await ctx.escrow.getTask(args.task)).deadline)}.`,
          ],
        },
      ),
    ),
  );

taskDef(
  "task:refund",
  "The provider agrees to refund the client (after a rejection or a cancellation request)",
).setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the provider agreed to refund", (ctx) => ctx.escrow.agreeRefund(args.task)),
  ),
);

taskDef(
  "task:dispute",
  "Provider: disputes a rejection or cancellation; client: pays its deposit on a disputed task (deposits approved automatically)",
).setAction(
  withPlainErrors(async (args: TaskArgs, hre) => {
    // A disputed task waits for the client's deposit; otherwise the provider raises the dispute.
    const byClient = ({ t }: Loaded) => t.status === DISPUTED;
    return act(
      hre,
      args,
      (loaded) =>
        byClient(loaded)
          ? "the client paid its deposit; the dispute goes to the arbitrator"
          : "the provider raised a dispute",
      (ctx, loaded) =>
        byClient(loaded) ? ctx.escrow.payDisputeDeposit(args.task) : ctx.escrow.raiseDispute(args.task),
      {
        before: async (ctx, loaded) => {
          const { t, token } = loaded;
          const deposit = byClient(loaded)
            ? (await ctx.escrow.getDispute(args.task)).deposit
            : (t.amount * t.arbitrationFeeBps) / BPS;
          await ensureAllowance(ctx, token, deposit);
        },
      },
    );
  }),
);

taskDef("task:evidence", "A party adds evidence (ERC-1497) to a rejected or disputed task")
  .addParam("evidence", "Evidence URI or text", undefined, types.string)
  .setAction(
    withPlainErrors(async (args: TaskArgs & { evidence: string }, hre) =>
      act(hre, args, "evidence submitted", (ctx) => ctx.escrow.submitEvidence(args.task, args.evidence), {
        after: async () => [`Evidence: ${args.evidence}`],
      }),
    ),
  );

taskDef("task:close", "The client closes an open task: the locked budget comes back in full").setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the client closed it", (ctx) => ctx.escrow.closeTask(args.task), {
      before: async (_ctx, { t }) => {
        if (t.status === ACCEPTED) {
          throw new PlainError(
            `Task #${args.task} has a provider at work, so it cannot simply be closed: ask the provider to cancel (task:cancel).`,
          );
        }
      },
    }),
  ),
);

taskDef("task:cancel", "The client asks the provider of an accepted task to cancel (silence refunds)").setAction(
  withPlainErrors(async (args: TaskArgs, hre) =>
    act(hre, args, "the client asked to cancel", (ctx) => ctx.escrow.closeTask(args.task), {
      before: async (_ctx, { t }) => {
        if (t.status === OPEN) {
          throw new PlainError(`Task #${args.task} is still open: close it instead (task:close), with a full refund.`);
        }
      },
      after: async (ctx) => [
        `The provider may refund (task:refund), deliver (task:submit) or dispute (task:dispute) until ` +
          `${formatTimestamp((await ctx.escrow.getTask(args.task)).deadline)}; silence refunds the client.`,
      ],
    }),
  ),
);

taskDef(
  "task:timeout",
  "Moves a task whose deadline passed (anyone may): expiry, refund, payment or default ruling",
).setAction(
  withPlainErrors(async (args: TaskArgs, hre) => act(hre, args, "timed out", (ctx) => ctx.escrow.timeout(args.task))),
);

// ------------------------------------------------------------------ task:show

/** A whole task, raw and formatted (exported for the demo). */
export async function taskView(ctx: Context, taskId: bigint, providers: bigint[] = []) {
  const { t, token } = await loadTask(ctx, taskId);
  const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const status = taskStatusName(t.status);
  const live = t.status < FIRST_TERMINAL;
  const now = await chainNow(ctx.hre);
  const counter = await ctx.escrow.getCounter(taskId);
  const dispute = await ctx.escrow.getDispute(taskId);
  const bids = [];
  for (const providerId of providers) {
    const bid = await ctx.escrow.getBid(taskId, providerId);
    bids.push({
      providerId,
      price: bid.price,
      priceText: bid.price === 0n ? "no bid" : amount(bid.price),
      eta: bid.eta,
      etaText: bid.price === 0n ? "-" : formatPeriod(bid.eta),
      proposal: bid.proposal,
    });
  }
  return {
    taskId,
    status,
    statusCode: Number(t.status),
    mode: TASK_MODES[Number(t.mode)],
    clientId: t.clientId,
    providerId: t.providerId,
    token: token.symbol,
    tokenAddress: token.address,
    amount: t.amount,
    amountText: amount(t.amount),
    amountMeaning: t.status === OPEN ? "locked (maximum budget)" : live ? "price (held in escrow)" : "settled",
    offer: t.status === OPEN ? currentOffer(t) : undefined,
    offerText: t.status === OPEN ? amount(currentOffer(t)) : undefined,
    deadline: t.deadline,
    deadlineText: formatTimestamp(t.deadline),
    deadlineMeaning: live ? DEADLINE_LABELS[status] : "last deadline",
    deadlinePassed: live && now > t.deadline,
    deliveryDuration: t.deliveryDuration,
    reviewPeriod: t.reviewPeriod,
    proposals: t.proposals,
    feeBps: t.feeBps,
    arbitrationFeeBps: t.arbitrationFeeBps,
    parentTaskId: t.parentTaskId,
    minScoreBps: t.minScoreBps,
    capability: t.capability === ZeroHash ? undefined : capabilityLabel(t.capability),
    counter:
      counter.price === 0n
        ? undefined
        : { price: counter.price, priceText: amount(counter.price), deliveryDuration: counter.deliveryDuration },
    dispute:
      dispute.arbitrator === "0x0000000000000000000000000000000000000000"
        ? undefined
        : {
            arbitrator: dispute.arbitrator,
            deposit: dispute.deposit,
            depositText: amount(dispute.deposit),
            disputeId: dispute.disputeId,
          },
    bids,
  };
}

taskDef("task:show", "A whole task: status, parties, amounts, deadlines, bids, counter-proposal and dispute")
  .addOptionalParam("providers", "Also show these agents' bids (ids, comma-separated)", undefined, types.string)
  .setAction(
    withPlainErrors(async (args: TaskArgs & { providers?: string }, hre) => {
      const ctx = await getContext(hre, args.from);
      const data = await taskView(ctx, args.task, args.providers ? parseIds(args.providers) : []);
      return output(hre, args.json, data, (d) => {
        printFields(
          {
            status: d.status,
            mode: d.mode,
            client: `#${d.clientId}`,
            provider: d.providerId === 0n ? "(none yet)" : `#${d.providerId}`,
            [d.amountMeaning]: d.amountText,
            ...(d.offerText !== undefined && { "current offer": d.offerText }),
            [d.deadlineMeaning]: d.deadlinePassed ? `${d.deadlineText} (passed: task:timeout applies)` : d.deadlineText,
            "delivery time": formatPeriod(d.deliveryDuration),
            "review period": formatPeriod(d.reviewPeriod),
            "protocol fee": formatBps(d.feeBps),
            "dispute deposit": `${formatBps(d.arbitrationFeeBps)} of the price`,
            proposals: `${d.proposals} of 8`,
            ...(d.parentTaskId !== 0n && { parent: `#${d.parentTaskId}` }),
            ...(d.minScoreBps !== 0n && { "minimum score": formatBps(d.minScoreBps) }),
            ...(d.capability && { capability: d.capability }),
            ...(d.counter && {
              "counter-proposal": `${d.counter.priceText}, delivery in ${formatPeriod(d.counter.deliveryDuration)}`,
            }),
            ...(d.dispute && {
              arbitrator: d.dispute.arbitrator,
              "deposit (each party)": d.dispute.depositText,
              "dispute id": d.dispute.disputeId === 0n ? "(waiting for the client's deposit)" : d.dispute.disputeId,
            }),
          },
          { title: `Task #${d.taskId} (${d.token})` },
        );
        if (d.bids.length > 0) {
          printTable(
            d.bids.map((b) => ({
              provider: `#${b.providerId}`,
              price: b.priceText,
              delivery: b.etaText,
              "proposal (first 16 bytes of its hash)": b.price === 0n ? "-" : b.proposal,
            })),
            { title: "Bids" },
          );
        }
      });
    }),
  );

// ------------------------------------------------------------------ task:withdraw

withdrawTask({
  name: "task:withdraw",
  description: "Collects the signer's credit (payouts that failed), or with --fees sweeps fees to the treasury",
  contract: (ctx) => ctx.escrow,
  fees: "protocol fees",
  credit: "credit",
});
