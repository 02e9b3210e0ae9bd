// evaluator:* and dispute:* — the court (EvaluatorStaking): evaluators stake, juries are drawn with
// VRF randomness, jurors commit and reveal a payout split, parties appeal, rounds are settled.
// vrf:fulfill answers the court's pending request on a local VRF coordinator mock.
import * as fs from "node:fs";
import * as path from "node:path";
import { AbiCoder, ZeroAddress, ZeroHash, getAddress, hexlify, keccak256, randomBytes } from "ethers";
import { task, types } from "hardhat/config";
import type { ContractTransactionReceipt, ContractTransactionResponse } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { EvaluatorStaking } from "../typechain-types";
import {
  type CommonArgs,
  type Context,
  type TokenInfo,
  chainNow,
  confirm,
  describeToken,
  formatAmount,
  formatTimestamp,
  getContext,
  output,
  parseAmount,
  printFields,
  printTable,
  requireCourt,
  resolveToken,
  taskStatusName,
  withCommonParams,
} from "./lib/context";
import { type ExplainOptions, PlainError, plainly, withPlainErrors } from "./lib/errors";

/** IEvaluatorStaking.Phase names, by value. */
export const PHASES = ["Staking", "Generating", "Drawing"] as const;
/** IEvaluatorStaking.CaseStatus names, by value. */
export const CASE_STATUSES = ["None", "Drawing", "Commit", "Reveal", "Appeal", "Ruled"] as const;
/** The provider's payout share of each choice. */
export const CHOICE_SHARES = ["0%", "25%", "50%", "75%", "100%"] as const;

const STAKING = 0n;
const GENERATING = 1n;
const DRAWING = 2n;
const CASE_DRAWING = 1n;
const CASE_COMMIT = 2n;
const CASE_REVEAL = 3n;
const CASE_APPEAL = 4n;

/** What each case status waits for. */
const STATUS_MEANING: Record<string, string> = {
  Drawing: "waits for its jury",
  Commit: "jurors commit their votes",
  Reveal: "jurors reveal their votes",
  Appeal: "the parties may appeal the ruling",
  Ruled: "final ruling given",
};

// ------------------------------------------------------------------ helpers

/** The court, its stake asset and the wording of its errors, for one signer. */
export interface CourtContext {
  ctx: Context;
  court: EvaluatorStaking;
  /** The stake asset: the native coin (address zero, shown as OKB) or the stake token. */
  asset: TokenInfo;
  /** Error wording: amounts in the stake asset, the Mocks tokens by address. */
  words: ExplainOptions;
}

/** The court of the network (a plain error when the deployment has none), connected to `from`. */
export async function courtContext(hre: HardhatRuntimeEnvironment, from?: string): Promise<CourtContext> {
  return courtOf(await getContext(hre, from));
}

/** The court context of an existing context. */
export async function courtOf(ctx: Context): Promise<CourtContext> {
  const court = requireCourt(ctx);
  const asset = await stakeAsset(ctx, court);
  const tokens: Record<string, TokenInfo> = {};
  for (const address of Object.values(ctx.addresses.tokens)) tokens[address] = await describeToken(ctx, address);
  return {
    ctx,
    court,
    asset,
    words: { decimals: asset.decimals, symbol: asset.symbol, tokens, names: { [ctx.signer.address]: "the signer" } },
  };
}

/** The stake asset: the native coin (OKB on X Layer) or the ERC-20 stake token. */
async function stakeAsset(ctx: Context, court: EvaluatorStaking): Promise<TokenInfo> {
  const token = await court.stakeToken();
  if (token === ZeroAddress) return { address: ZeroAddress, symbol: "OKB", decimals: 18 };
  return describeToken(ctx, token);
}

/** Error wording in a case's token (appeals, fees). */
function tokenWords(c: CourtContext, token: TokenInfo): ExplainOptions {
  return { ...c.words, decimals: token.decimals, symbol: token.symbol };
}

/** Sends a transaction and explains a refusal. */
function send(words: ExplainOptions, tx: () => Promise<ContractTransactionResponse>) {
  return plainly(() => confirm(tx()), words);
}

/** The assets rewards are shown in: the stake asset, then the Mocks stablecoins. */
function rewardAssets(c: CourtContext): TokenInfo[] {
  const assets = [c.asset];
  for (const info of Object.values(c.words.tokens ?? {}) as TokenInfo[]) {
    if (info.symbol !== "OKB" && !assets.some((a) => a.address === info.address)) assets.push(info);
  }
  return assets;
}

/** "3", "75%" or "75" (a percentage) -> choice 0..4. */
export function parseChoice(value: string): number {
  const text = value.trim();
  if (/^[0-4]$/.test(text)) return Number(text);
  const share = CHOICE_SHARES.indexOf(`${text.replace(/%$/, "")}%` as (typeof CHOICE_SHARES)[number]);
  if (share < 0) {
    throw new PlainError(`"${value}" is not a choice: use 0 to 4, or the provider's share 0%, 25%, 50%, 75% or 100%.`);
  }
  return share;
}

/** A duration in words: its two largest units ("1 hour", "59 minutes 59 seconds"). */
export function inWords(seconds: bigint | number): string {
  let s = Number(seconds);
  if (s <= 0) return "0 seconds";
  const parts: string[] = [];
  for (const [unit, size] of [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
    ["second", 1],
  ] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? "" : "s"}`);
    else if (parts.length > 0) break;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** A deadline relative to `now`: "in 1 hour", "passed 5 minutes ago" or "none". */
export function deadlineWords(deadline: bigint, now: bigint): string {
  if (deadline === 0n) return "none";
  return deadline >= now ? `in ${inWords(deadline - now)}` : `passed ${inWords(now - deadline)} ago`;
}

/** The commitment of a vote, as IEvaluatorStaking.commitmentOf computes it. */
export function commitmentOf(caseId: bigint, round: bigint, jurorId: bigint, choice: number, salt: string): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ["uint256", "uint256", "uint256", "uint256", "bytes32"],
      [caseId, round, jurorId, choice, salt],
    ),
  );
}

/** What a commit leaves on disk until its reveal. */
export interface SaltFile {
  chainId: string;
  court: string;
  caseId: string;
  round: string;
  jurorId: string;
  choice: number;
  salt: string;
  commitment: string;
}

/** `.court-salts/<chainId>/<court>/<case>-<round>-<juror>.json` under the project root. */
export async function saltPath(c: CourtContext, caseId: bigint, round: bigint, jurorId: bigint): Promise<string> {
  const { chainId } = await c.ctx.hre.ethers.provider.getNetwork();
  const court = getAddress(await c.court.getAddress());
  return path.join(
    c.ctx.hre.config.paths.root,
    ".court-salts",
    chainId.toString(),
    court,
    `${caseId}-${round}-${jurorId}.json`,
  );
}

function readSalt(file: string): SaltFile | undefined {
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, "utf8")) as SaltFile;
}

function relative(file: string): string {
  return path.relative(process.cwd(), file) || file;
}

// ------------------------------------------------------------------ receipts in words

/** The court's (and TaskEscrow's settlement) events in `receipt`, as sentences. */
export async function describeCourtReceipt(c: CourtContext, receipt: ContractTransactionReceipt): Promise<string[]> {
  const court = getAddress(await c.court.getAddress());
  const escrow = getAddress(c.ctx.addresses.escrow);
  const stake = (v: bigint) => formatAmount(v, c.asset.decimals, c.asset.symbol);
  const tokenAmount = async (token: string, v: bigint) => {
    const info = await describeToken(c.ctx, token);
    return formatAmount(v, info.decimals, info.symbol);
  };
  const caseToken = async (caseId: bigint) => describeToken(c.ctx, (await c.court.getCase(caseId)).token);
  const lines: string[] = [];
  for (const log of receipt.logs) {
    const at = getAddress(log.address);
    if (at === escrow) {
      const parsed = c.ctx.escrow.interface.parseLog(log);
      if (parsed?.name === "TaskSettled") {
        const a = parsed.args;
        const t = await c.ctx.escrow.getTask(a.taskId);
        const token = await describeToken(c.ctx, t.token);
        const amt = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
        lines.push(
          `TaskEscrow settles task #${a.taskId} (${taskStatusName(t.status)}): ${amt(a.toProvider)} to the provider, ` +
            `${amt(a.toClient)} to the client, ${amt(a.fee)} protocol fee.`,
        );
      }
      continue;
    }
    if (at !== court) continue;
    const parsed = c.court.interface.parseLog(log);
    if (!parsed) continue;
    const a = parsed.args;
    switch (parsed.name) {
      case "Staked":
        lines.push(
          `Agent #${a.agentId} staked ${stake(a.amount)}${a.pending ? " (pending until the draw ends)" : ""}.`,
        );
        break;
      case "StakeSynced":
        lines.push(`Agent #${a.agentId} has ${stake(a.staked)} in the pool (weight ${a.weight}).`);
        break;
      case "UnstakeRequested":
        lines.push(
          `Agent #${a.agentId}: ${stake(a.amount)} leaves the pool; ${stake(a.unstaking)} claimable from ` +
            `${formatTimestamp(a.unstakeAt)}.`,
        );
        break;
      case "UnstakeCancelled":
        lines.push(
          `Agent #${a.agentId}: the unstake request of ${stake(a.amount)} is cancelled; it is back in the pool.`,
        );
        break;
      case "UnstakeClaimed":
        lines.push(`Agent #${a.agentId}: ${stake(a.amount)} unstaked, paid to ${a.to}.`);
        break;
      case "PhaseChanged":
        lines.push(`The court moves from ${PHASES[Number(a.from)]} to ${PHASES[Number(a.to)]} (epoch ${a.epoch}).`);
        break;
      case "RandomnessRequested":
        lines.push(
          `Randomness requested for epoch ${a.epoch} (request ${a.requestId}) for ${a.casesWaiting} waiting case(s).`,
        );
        break;
      case "RandomnessReceived":
        lines.push(`The random word of epoch ${a.epoch} arrived (request ${a.requestId}): juries can be drawn.`);
        break;
      case "RandomnessIgnored":
        lines.push(`A random word for request ${a.requestId} was ignored (not the pending request).`);
        break;
      case "FallbackScheduled":
        lines.push(`Epoch ${a.epoch} will use the hash of block ${a.targetBlock} instead of VRF.`);
        break;
      case "CaseCreated":
        lines.push(
          `Case #${a.caseId} opened: client #${a.clientId} against provider #${a.providerId}, fee ` +
            `${await tokenAmount(a.token, a.fee)}.`,
        );
        break;
      case "CaseStatusChanged":
        lines.push(
          `Case #${a.caseId}, round ${a.round}: ${CASE_STATUSES[Number(a.from)]} → ${CASE_STATUSES[Number(a.to)]}` +
            (a.deadline === 0n
              ? "."
              : CASE_STATUSES[Number(a.to)] === "Drawing"
                ? `; a jury still short after ${formatTimestamp(a.deadline)} goes on with the jurors drawn.`
                : `, until ${formatTimestamp(a.deadline)}.`),
        );
        break;
      case "JurorDrawn":
        lines.push(`Seat ${a.seat + 1n}: juror #${a.agentId}, with ${stake(a.stake)} at stake.`);
        break;
      case "VoteCommitted":
        lines.push(`Juror #${a.agentId} committed its vote.`);
        break;
      case "VoteRevealed":
        lines.push(`Juror #${a.agentId} revealed ${CHOICE_SHARES[Number(a.choice)]} to the provider.`);
        break;
      case "RoundRuled":
        lines.push(
          `Round ${a.round} rules ${CHOICE_SHARES[Number(a.choice)]} to the provider (${a.revealed} vote(s) revealed).`,
        );
        break;
      case "RoundAbandoned":
        lines.push(`Nobody revealed (or could be seated) in round ${a.round}: case #${a.caseId} is redrawn.`);
        break;
      case "RoundShrunk":
        lines.push(`Round ${a.round} was still short after its draw timeout: it goes on with ${a.size} juror(s).`);
        break;
      case "Appealed":
        lines.push(
          `Agent #${a.partyId} appealed: round ${a.round} seats ${a.jurySize} jurors, for a fee of ` +
            `${formatAmount(a.fee, (await caseToken(a.caseId)).decimals, (await caseToken(a.caseId)).symbol)}.`,
        );
        break;
      case "FinalRuling":
        lines.push(
          `Final ruling of case #${a.caseId}: ${CHOICE_SHARES[Number(a.choice)]} to the provider, given to ${a.arbitrable}.`,
        );
        break;
      case "JurorSlashed":
        lines.push(
          `Juror #${a.agentId} loses ${stake(a.amount)}` +
            (a.missed
              ? ` (missed its vote; cooldown until ${formatTimestamp(a.cooldownUntil)}).`
              : " (voted against the ruling)."),
        );
        break;
      case "JurorRewarded": {
        const token = await caseToken(a.caseId);
        lines.push(
          `Juror #${a.agentId} earns ${formatAmount(a.feeReward, token.decimals, token.symbol)} and ` +
            `${stake(a.stakeReward)} (voted with the ruling).`,
        );
        break;
      }
      case "RewardsClaimed":
        lines.push(
          `${a.agentId === 0n ? "The protocol's share" : `Agent #${a.agentId}'s rewards`}: ` +
            `${a.asset === ZeroAddress ? stake(a.amount) : await tokenAmount(a.asset, a.amount)} paid to ${a.to}.`,
        );
        break;
    }
  }
  return lines;
}

// ------------------------------------------------------------------ evaluators

/** An evaluator's stake, rewards and votes (exported for the demo). */
export async function evaluatorView(c: CourtContext, agentId: bigint) {
  const { court, asset } = c;
  const amount = (v: bigint) => formatAmount(v, asset.decimals, asset.symbol);
  const e = await court.getEvaluator(agentId);
  const now = await chainNow(c.ctx.hre);
  const rewards = [];
  for (const info of rewardAssets(c)) {
    const value = await court.rewardsOf(agentId, info.address);
    rewards.push({
      asset: info.symbol,
      address: info.address,
      amount: value,
      amountText: formatAmount(value, info.decimals, info.symbol),
    });
  }
  const record = await c.ctx.reputation.getRecord(agentId);
  return {
    agentId,
    asset: asset.symbol,
    stakeToken: asset.address,
    staked: e.staked,
    stakedText: amount(e.staked),
    locked: e.locked,
    lockedText: amount(e.locked),
    free: e.staked - e.locked,
    freeText: amount(e.staked - e.locked),
    pending: e.pending,
    pendingText: amount(e.pending),
    unstaking: e.unstaking,
    unstakingText: amount(e.unstaking),
    unstakeAt: e.unstakeAt,
    unstakeAtText: e.unstaking === 0n ? "-" : formatTimestamp(e.unstakeAt),
    claimable: e.unstaking !== 0n && now >= e.unstakeAt,
    weight: await court.weightOf(agentId),
    cooldownUntil: e.cooldownUntil,
    cooldownText: e.cooldownUntil > now ? `until ${formatTimestamp(e.cooldownUntil)}` : "none",
    rewards,
    votes: { coherent: record.votesCoherent, incoherent: record.votesIncoherent },
  };
}

type AgentArgs = CommonArgs & { agent: bigint };

function agentDef(name: string, description: string) {
  return withCommonParams(
    task(name, description).addParam("agent", "Evaluator agent id (the signer acts for it)", undefined, types.bigint),
  );
}

/** Stakes `amount` (smallest units) for `agentId`: native value, or approve + stake for a stake token. */
export async function stakeFor(c: CourtContext, agentId: bigint, amount: bigint) {
  const { court, asset, ctx } = c;
  let approved = false;
  if (asset.address !== ZeroAddress) {
    const { IERC20Metadata__factory } = await import("../typechain-types");
    const erc20 = IERC20Metadata__factory.connect(asset.address, ctx.signer);
    const spender = await court.getAddress();
    if ((await erc20.allowance(ctx.signer.address, spender)) < amount) {
      await send(c.words, () => erc20.approve(spender, amount));
      approved = true;
    }
  }
  const value = asset.address === ZeroAddress ? amount : 0n;
  const receipt = await send(c.words, () => court.stake(agentId, amount, { value }));
  const staked = receipt.logs.map((log) => court.interface.parseLog(log)).find((parsed) => parsed?.name === "Staked");
  return { receipt, approved, pending: Boolean(staked?.args.pending) };
}

agentDef("evaluator:stake", "Stakes OKB for an evaluator agent (native coin, or approve + stake for a stake token)")
  .addParam("amount", "Amount in OKB (the stake asset), e.g. 100", undefined, types.string)
  .setAction(
    withPlainErrors(async (args: AgentArgs & { amount: string }, hre) => {
      const c = await courtContext(hre, args.from);
      const amount = parseAmount(args.amount, c.asset.decimals);
      const { receipt, approved, pending } = await stakeFor(c, args.agent, amount);
      const view = await evaluatorView(c, args.agent);
      const data = {
        agentId: args.agent,
        amount,
        amountText: formatAmount(amount, c.asset.decimals, c.asset.symbol),
        asset: c.asset.symbol,
        approved,
        pending,
        staked: view.staked,
        stakedText: view.stakedText,
        weight: view.weight,
        events: await describeCourtReceipt(c, receipt),
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(
          `Agent #${d.agentId} staked ${d.amountText}` +
            (d.pending ? " (pending: it joins the pool when the draw epoch ends)." : `; ${d.stakedText} in the pool.`),
        );
        for (const line of d.events) console.log(`  ${line}`);
      });
    }),
  );

agentDef("evaluator:unstake", "Requests an unstake (claimable after the cooldown), or cancels the open request")
  .addOptionalParam("amount", "Amount in OKB (default: all free stake)", undefined, types.string)
  .addFlag("cancel", "Cancel the open unstake request instead (the amount goes back to the pool)")
  .setAction(
    withPlainErrors(async (args: AgentArgs & { amount?: string; cancel: boolean }, hre) => {
      const c = await courtContext(hre, args.from);
      const { court, asset } = c;
      let amount: bigint;
      let receipt: ContractTransactionReceipt;
      if (args.cancel) {
        if (args.amount !== undefined) throw new PlainError("--cancel cancels the whole request: leave out --amount.");
        amount = (await court.getEvaluator(args.agent)).unstaking;
        receipt = await send(c.words, () => court.cancelUnstake(args.agent));
      } else {
        const e = await court.getEvaluator(args.agent);
        amount = args.amount !== undefined ? parseAmount(args.amount, asset.decimals) : e.staked + e.pending - e.locked;
        receipt = await send(c.words, () => court.requestUnstake(args.agent, amount));
      }
      const e = await court.getEvaluator(args.agent);
      const fmt = (v: bigint) => formatAmount(v, asset.decimals, asset.symbol);
      const data = {
        agentId: args.agent,
        action: args.cancel ? "cancelled" : "requested",
        amount,
        amountText: fmt(amount),
        staked: e.staked,
        stakedText: fmt(e.staked),
        unstaking: e.unstaking,
        unstakingText: fmt(e.unstaking),
        unstakeAt: e.unstakeAt,
        unstakeAtText: e.unstaking === 0n ? "-" : formatTimestamp(e.unstakeAt),
        events: await describeCourtReceipt(c, receipt),
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(
          d.action === "cancelled"
            ? `Agent #${d.agentId}: the unstake of ${d.amountText} is cancelled; ${d.stakedText} in the pool.`
            : `Agent #${d.agentId}: ${d.unstakingText} unstaking, claimable from ${d.unstakeAtText} (evaluator:claim).`,
        );
      });
    }),
  );

agentDef("evaluator:claim", "Claims unstaked OKB once the cooldown passed, or with --rewards the juror rewards")
  .addOptionalParam(
    "rewards",
    "Claim rewards instead: all, OKB (the stake asset), USDT, USDG or a token address",
    undefined,
    types.string,
  )
  .setAction(
    withPlainErrors(async (args: AgentArgs & { rewards?: string }, hre) => {
      const c = await courtContext(hre, args.from);
      const { court } = c;
      const claims: { asset: string; address: string; amount: bigint; amountText: string; to: string; tx: string }[] =
        [];
      const claimed = async (receipt: ContractTransactionReceipt, info: TokenInfo, event: string) => {
        const parsed = receipt.logs.map((log) => court.interface.parseLog(log)).find((p) => p?.name === event)!;
        claims.push({
          asset: info.symbol,
          address: info.address,
          amount: parsed.args.amount,
          amountText: formatAmount(parsed.args.amount, info.decimals, info.symbol),
          to: parsed.args.to,
          tx: receipt.hash,
        });
      };
      if (args.rewards === undefined) {
        await claimed(await send(c.words, () => court.claimUnstake(args.agent)), c.asset, "UnstakeClaimed");
      } else {
        let assets: TokenInfo[];
        if (args.rewards.toLowerCase() === "all") {
          assets = [];
          for (const info of rewardAssets(c))
            if ((await court.rewardsOf(args.agent, info.address)) > 0n) assets.push(info);
          if (assets.length === 0) throw new PlainError(`Agent #${args.agent} has no rewards to claim.`);
        } else {
          const ref = args.rewards.toUpperCase();
          assets = [ref === "OKB" || ref === "STAKE" ? c.asset : await resolveToken(c.ctx, args.rewards)];
        }
        for (const info of assets) {
          await claimed(
            await send(c.words, () => court.claimRewards(args.agent, info.address)),
            info,
            "RewardsClaimed",
          );
        }
      }
      const data = { agentId: args.agent, kind: args.rewards === undefined ? "unstake" : "rewards", claims };
      return output(hre, args.json, data, (d) => {
        for (const claim of d.claims) {
          console.log(
            `Agent #${d.agentId}: ${claim.amountText} ${d.kind === "unstake" ? "unstaked" : "of rewards"} paid to ${claim.to}.`,
          );
        }
      });
    }),
  );

agentDef(
  "evaluator:show",
  "An evaluator: stake, locked, pending, unstaking, weight, cooldown, rewards and votes",
).setAction(
  withPlainErrors(async (args: AgentArgs, hre) => {
    const c = await courtContext(hre, args.from);
    const data = await evaluatorView(c, args.agent);
    return output(hre, args.json, data, (d) => {
      printFields(
        {
          staked: d.stakedText,
          "locked by jury seats": d.lockedText,
          free: d.freeText,
          "pending (joins at the next sync)": d.pendingText,
          unstaking: d.unstaking === 0n ? "-" : `${d.unstakingText}, claimable from ${d.unstakeAtText}`,
          weight: d.weight,
          cooldown: d.cooldownText,
          ...Object.fromEntries(d.rewards.map((r) => [`rewards in ${r.asset}`, r.amountText])),
          "votes (coherent / not)": `${d.votes.coherent} / ${d.votes.incoherent}`,
        },
        { title: `Evaluator #${d.agentId} (stake in ${d.asset})` },
      );
    });
  }),
);

// ------------------------------------------------------------------ disputes

/** A case and its current round, raw and formatted (exported for the demo). */
export async function disputeView(c: CourtContext, caseId: bigint, taskId?: bigint) {
  const { court, asset } = c;
  const cs = await plainly(() => court.getCase(caseId), c.words);
  const round = await court.getRound(caseId, cs.round);
  const token = await describeToken(c.ctx, cs.token);
  const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const now = await chainNow(c.ctx.hre);
  const [phase, epoch] = await court.drawState();
  const status = CASE_STATUSES[Number(cs.status)];
  const jurors = [];
  for (const id of round.jurors) {
    const v = await court.getVote(caseId, cs.round, id);
    jurors.push({
      agentId: id,
      stake: v.stake,
      stakeText: formatAmount(v.stake, asset.decimals, asset.symbol),
      committed: v.commitHash !== ZeroHash,
      revealed: v.revealed,
      choice: v.revealed ? CHOICE_SHARES[Number(v.choice)] : undefined,
    });
  }
  if (taskId === undefined && getAddress(cs.arbitrable) === getAddress(c.ctx.addresses.escrow)) {
    const events = await c.ctx.escrow
      .queryFilter(c.ctx.escrow.filters.Dispute(await court.getAddress(), caseId))
      .catch(() => []);
    if (events.length > 0) taskId = events[events.length - 1].args.evidenceGroupId;
  }
  const appealable = cs.status === CASE_APPEAL && now <= cs.deadline && cs.appeals + 1n < cs.params.maxRounds;
  const cost = await court.appealCost(caseId);
  return {
    caseId,
    taskId,
    arbitrable: cs.arbitrable,
    status,
    statusCode: Number(cs.status),
    statusMeaning: STATUS_MEANING[status],
    phase: PHASES[Number(phase)],
    epoch,
    round: cs.round,
    appeals: cs.appeals,
    maxRounds: cs.params.maxRounds,
    deadline: cs.deadline,
    deadlineText: formatTimestamp(cs.deadline),
    deadlineWords: deadlineWords(cs.deadline, now),
    deadlinePassed: cs.deadline !== 0n && now > cs.deadline,
    clientId: cs.clientId,
    providerId: cs.providerId,
    token: token.symbol,
    tokenAddress: token.address,
    fee: cs.fee,
    feeText: amount(cs.fee),
    minStake: cs.params.minStake,
    minStakeText: formatAmount(cs.params.minStake, asset.decimals, asset.symbol),
    jurySize: round.size,
    seated: round.seated,
    committed: round.committed,
    revealed: round.revealed,
    ruled: round.ruled,
    abandoned: round.abandoned,
    ruling: round.ruled ? CHOICE_SHARES[Number(round.ruling)] : undefined,
    roundFee: round.fee,
    roundFeeText: amount(round.fee),
    settled: round.cursor === 2n * BigInt(round.jurors.length) && round.jurors.length > 0,
    jurors,
    appealable,
    appealCost: cost,
    appealCostText: amount(cost),
  };
}

type CaseArgs = CommonArgs & { case: bigint };

function caseDef(name: string, description: string) {
  return withCommonParams(
    task(name, description).addParam("case", "Case id (the dispute id)", undefined, types.bigint),
  );
}

withCommonParams(
  task("dispute:show", "A court case and its current round: status, deadline, jurors, votes, ruling, appeal cost")
    .addOptionalPositionalParam("caseId", "Case id (or use --task)", undefined, types.bigint)
    .addOptionalParam("case", "Case id", undefined, types.bigint)
    .addOptionalParam("task", "Task id: the case of its dispute (TaskEscrow.getDispute)", undefined, types.bigint),
).setAction(
  withPlainErrors(async (args: CommonArgs & { caseId?: bigint; case?: bigint; task?: bigint }, hre) => {
    const c = await courtContext(hre, args.from);
    let caseId = args.case ?? args.caseId;
    if (args.task !== undefined) {
      const dispute = await c.ctx.escrow.getDispute(args.task);
      if (dispute.disputeId === 0n || getAddress(dispute.arbitrator) !== getAddress(await c.court.getAddress())) {
        throw new PlainError(
          `Task #${args.task} has no case in the court (no dispute, or one with another arbitrator).`,
        );
      }
      if (caseId !== undefined && caseId !== dispute.disputeId) {
        throw new PlainError(`Task #${args.task}'s case is #${dispute.disputeId}, not #${caseId}.`);
      }
      caseId = dispute.disputeId;
    }
    if (caseId === undefined) throw new PlainError("Give a case id (or --task with a task id).");
    const data = await disputeView(c, caseId, args.task);
    return output(hre, args.json, data, (d) => {
      printFields(
        {
          status: `${d.status}: ${d.statusMeaning}`,
          ...(d.taskId !== undefined && { task: `#${d.taskId}` }),
          parties: `client #${d.clientId}, provider #${d.providerId}`,
          round: `${d.round} (${d.appeals} appeal(s); at most ${d.maxRounds} rounds)`,
          deadline: d.deadline === 0n ? "none" : `${d.deadlineText} (${d.deadlineWords})`,
          "court phase": `${d.phase} (epoch ${d.epoch})`,
          "arbitration fee": d.feeText,
          "round fee": d.roundFeeText,
          jury: `${d.seated} of ${d.jurySize} seated, ${d.committed} committed, ${d.revealed} revealed`,
          ruling: d.ruling ? `${d.ruling} to the provider` : d.abandoned ? "none (nobody revealed: redrawn)" : "-",
          "appeal cost": d.appealable ? d.appealCostText : `${d.appealCostText} (no appeal possible now)`,
        },
        { title: `Case #${d.caseId} (${d.token})` },
      );
      printTable(
        d.jurors.map((j) => ({
          juror: `#${j.agentId}`,
          stake: j.stakeText,
          committed: j.committed,
          revealed: j.revealed,
          vote: j.choice ?? "-",
        })),
        { title: "Jurors" },
      );
    });
  }),
);

/** Commits `jurorId`'s vote with a fresh salt, kept in the salt file (exported for the demo). */
export async function commitVote(c: CourtContext, caseId: bigint, jurorId: bigint, choice: number) {
  const { court } = c;
  const cs = await plainly(() => court.getCase(caseId), c.words);
  const round = cs.round;
  const file = await saltPath(c, caseId, round, jurorId);
  const previous = readSalt(file);
  if (previous) {
    const onChain = (await court.getVote(caseId, round, jurorId)).commitHash;
    if (onChain !== ZeroHash && onChain === previous.commitment) {
      throw new PlainError(
        `Juror #${jurorId} already committed in case #${caseId}, round ${round}; its salt is in ` +
          `${relative(file)}: reveal with dispute:reveal.`,
      );
    }
  }
  const salt = hexlify(randomBytes(32));
  const commitment = commitmentOf(caseId, round, jurorId, choice, salt);
  const { chainId } = await c.ctx.hre.ethers.provider.getNetwork();
  const saved: SaltFile = {
    chainId: chainId.toString(),
    court: getAddress(await court.getAddress()),
    caseId: caseId.toString(),
    round: round.toString(),
    jurorId: jurorId.toString(),
    choice,
    salt,
    commitment,
  };
  // Saved before sending: a mined commit must never lose its salt. A refused one restores the old file.
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(saved, null, 2) + "\n", { mode: 0o600 });
  let receipt: ContractTransactionReceipt;
  try {
    receipt = await send(c.words, () => court.commit(caseId, jurorId, commitment));
  } catch (err) {
    if (previous) fs.writeFileSync(file, JSON.stringify(previous, null, 2) + "\n", { mode: 0o600 });
    else fs.rmSync(file, { force: true });
    throw err;
  }
  return { round, commitment, file, receipt };
}

caseDef("dispute:commit", "A juror commits its vote; the random salt is kept in .court-salts/ for the reveal")
  .addParam("juror", "Juror agent id (the signer acts for it)", undefined, types.bigint)
  .addParam("choice", "The provider's share: 0..4 or 0%, 25%, 50%, 75%, 100%", undefined, types.string)
  .setAction(
    withPlainErrors(async (args: CaseArgs & { juror: bigint; choice: string }, hre) => {
      const c = await courtContext(hre, args.from);
      const choice = parseChoice(args.choice);
      const { round, commitment, file, receipt } = await commitVote(c, args.case, args.juror, choice);
      const data = {
        caseId: args.case,
        round,
        jurorId: args.juror,
        choice,
        share: CHOICE_SHARES[choice],
        commitment,
        saltFile: relative(file),
        status: CASE_STATUSES[Number((await c.court.getCase(args.case)).status)],
        events: await describeCourtReceipt(c, receipt),
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(`Juror #${d.jurorId} committed its vote in case #${d.caseId}, round ${d.round} (${d.share}).`);
        console.log(`  The salt is in ${d.saltFile}: keep it until the reveal (dispute:reveal).`);
        for (const line of d.events.slice(1)) console.log(`  ${line}`);
      });
    }),
  );

/** Reveals `jurorId`'s vote from its salt file, moving the case to Reveal first when the commit period is over. */
export async function revealVote(c: CourtContext, caseId: bigint, jurorId: bigint) {
  const { court } = c;
  let cs = await plainly(() => court.getCase(caseId), c.words);
  const lines: string[] = [];
  let advanced = false;
  if (cs.status === CASE_COMMIT && (await chainNow(c.ctx.hre)) >= cs.deadline) {
    const moved = await send(c.words, () => court.advance(caseId));
    lines.push(...(await describeCourtReceipt(c, moved)));
    advanced = true;
    cs = await court.getCase(caseId);
  }
  const round = cs.round;
  const file = await saltPath(c, caseId, round, jurorId);
  const saved = readSalt(file);
  if (!saved) {
    throw new PlainError(
      `There is no salt file for juror #${jurorId} in case #${caseId}, round ${round} (${relative(file)}): reveal ` +
        `from the machine that committed (dispute:commit).`,
    );
  }
  const receipt = await send(c.words, () => court.reveal(caseId, jurorId, saved.choice, saved.salt));
  lines.push(...(await describeCourtReceipt(c, receipt)));
  return { round, choice: saved.choice, advanced, lines, receipt };
}

caseDef("dispute:reveal", "A juror reveals its vote from its salt file (advancing the case first when needed)")
  .addParam("juror", "Juror agent id (the signer acts for it)", undefined, types.bigint)
  .setAction(
    withPlainErrors(async (args: CaseArgs & { juror: bigint }, hre) => {
      const c = await courtContext(hre, args.from);
      const { round, choice, advanced, lines, receipt } = await revealVote(c, args.case, args.juror);
      const r = await c.court.getRound(args.case, round);
      const data = {
        caseId: args.case,
        round,
        jurorId: args.juror,
        choice,
        share: CHOICE_SHARES[choice],
        advanced,
        status: CASE_STATUSES[Number((await c.court.getCase(args.case)).status)],
        ruling: r.ruled ? CHOICE_SHARES[Number(r.ruling)] : undefined,
        events: lines,
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(`Juror #${d.jurorId} revealed ${d.share} in case #${d.caseId}, round ${d.round}.`);
        for (const line of d.events) console.log(`  ${line}`);
      });
    }),
  );

caseDef("dispute:appeal", "A party appeals the ruling, paying the appeal cost in the task's token (approved first)")
  .addParam("party", "The appealing party's agent id (client or provider)", undefined, types.bigint)
  .setAction(
    withPlainErrors(async (args: CaseArgs & { party: bigint }, hre) => {
      const c = await courtContext(hre, args.from);
      const { court, ctx } = c;
      const cs = await plainly(() => court.getCase(args.case), c.words);
      const token = await describeToken(ctx, cs.token);
      const words = tokenWords(c, token);
      const cost = await court.appealCost(args.case);
      let approved = false;
      if (cost > 0n) {
        const { IERC20Metadata__factory } = await import("../typechain-types");
        const erc20 = IERC20Metadata__factory.connect(token.address, ctx.signer);
        const spender = await court.getAddress();
        if ((await erc20.allowance(ctx.signer.address, spender)) < cost) {
          await send(words, () => erc20.approve(spender, cost));
          approved = true;
        }
      }
      const receipt = await send(words, () => court.appeal(args.case, args.party));
      const after = await court.getCase(args.case);
      const data = {
        caseId: args.case,
        partyId: args.party,
        round: after.round,
        jurySize: (await court.getRound(args.case, after.round)).size,
        fee: cost,
        feeText: formatAmount(cost, token.decimals, token.symbol),
        approved,
        status: CASE_STATUSES[Number(after.status)],
        events: await describeCourtReceipt(c, receipt),
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(
          `Agent #${d.partyId} appealed case #${d.caseId} for ${d.feeText}: round ${d.round} seats ${d.jurySize} jurors.`,
        );
        for (const line of d.events) console.log(`  ${line}`);
      });
    }),
  );

/** The first round of a case whose jurors still wait for settlement (ruled or abandoned), if any. */
async function roundToExecute(court: EvaluatorStaking, caseId: bigint, last: bigint) {
  for (let round = 0n; round <= last; round++) {
    const r = await court.getRound(caseId, round);
    const steps = 2n * BigInt(r.jurors.length);
    if ((r.ruled || r.abandoned) && r.jurors.length > 0 && r.cursor < steps) return { round, left: steps - r.cursor };
  }
  return undefined;
}

/**
 * One step for a case (exported for the demo): draw its jury, end the draw phase, move it past an
 * elapsed deadline, settle a round's jurors, ask for randomness, or fall back to a block hash.
 */
export async function advanceStep(c: CourtContext, caseId: bigint, iterations?: number) {
  const { court, ctx } = c;
  const cs = await plainly(() => court.getCase(caseId), c.words);
  const [phase, epoch, phaseSince, requestId, pendingCases, casesThisEpoch] = await court.drawState();
  const t = await court.timing();
  const now = await chainNow(ctx.hre);
  const deadlinePassed = cs.deadline !== 0n && now >= cs.deadline;
  const step = async (action: string, what: string, tx: () => Promise<ContractTransactionResponse>) => {
    const receipt = await send(c.words, tx);
    return { action, what, receipt, lines: await describeCourtReceipt(c, receipt) };
  };
  if (phase === DRAWING && cs.status === CASE_DRAWING && cs.markEpoch < epoch) {
    const n = iterations ?? 100;
    return step("draw", `drew jurors for case #${caseId}`, () => court.draw(caseId, n));
  }
  if (phase === DRAWING && (casesThisEpoch === 0n || now >= phaseSince + t.maxDrawingTime)) {
    return step("passPhase", "ended the Drawing phase", () => court.passPhase());
  }
  if (deadlinePassed && [CASE_COMMIT, CASE_REVEAL, CASE_APPEAL].includes(cs.status)) {
    return step("advance", `moved case #${caseId} past its deadline`, () => court.advance(caseId));
  }
  if (phase === STAKING) {
    const pending = await roundToExecute(court, caseId, cs.round);
    if (pending) {
      const n = iterations ?? Number(pending.left);
      return step("execute", `settled the jurors of round ${pending.round}`, () =>
        court.execute(caseId, pending.round, n),
      );
    }
    if (cs.status === CASE_DRAWING && pendingCases > 0n && now >= phaseSince + t.minStakingTime) {
      return step("requestRandomness", "asked for the random word of the next draw", () => court.requestRandomness());
    }
  }
  if (phase === GENERATING && now >= phaseSince + t.randomnessTimeout) {
    return step("fallbackRandomness", "fell back to a block hash for randomness", () => court.fallbackRandomness());
  }
  const status = CASE_STATUSES[Number(cs.status)];
  const until = `${formatTimestamp(cs.deadline)} (${deadlineWords(cs.deadline, now)})`;
  const waiting: Record<string, string> = {
    Drawing:
      phase === GENERATING
        ? `it waits for the random word of request ${requestId} (on a local network: vrf:fulfill)`
        : phase === DRAWING
          ? `it waits for the next draw epoch (this one ends with dispute:advance once every case is seated)`
          : `it waits for a draw (randomness can be requested ${deadlineWords(phaseSince + t.minStakingTime, now)})`,
    Commit: `jurors commit until ${until} (dispute:commit)`,
    Reveal: `jurors reveal until ${until} (dispute:reveal)`,
    Appeal: `the parties may appeal until ${until} (dispute:appeal)`,
    Ruled: `its ruling is final and every round is settled`,
  };
  throw new PlainError(`Nothing to do for case #${caseId} now: ${waiting[status] ?? `it is ${status}`}.`);
}

caseDef(
  "dispute:advance",
  "One step for a case: request randomness, draw, end the draw phase, pass a deadline or settle jurors",
)
  .addOptionalParam("iterations", "Draw candidates or settlement steps (default: 100 / all)", undefined, types.int)
  .setAction(
    withPlainErrors(async (args: CaseArgs & { iterations?: number }, hre) => {
      const c = await courtContext(hre, args.from);
      const { action, what, receipt, lines } = await advanceStep(c, args.case, args.iterations);
      const cs = await c.court.getCase(args.case);
      const [phase] = await c.court.drawState();
      const data = {
        caseId: args.case,
        action,
        description: what,
        status: CASE_STATUSES[Number(cs.status)],
        phase: PHASES[Number(phase)],
        events: lines,
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) => {
        console.log(`Case #${d.caseId}: ${d.description} (${d.action}); now ${d.status}, court phase ${d.phase}.`);
        for (const line of d.events) console.log(`  ${line}`);
      });
    }),
  );

// ------------------------------------------------------------------ vrf:fulfill

/** Fulfils the court's pending VRF request on the coordinator mock (exported for the demo). */
export async function fulfilRandomness(c: CourtContext, word?: bigint) {
  const { court, ctx } = c;
  const [phase, epoch, , requestId] = await court.drawState();
  if (phase !== GENERATING || requestId === 0n) {
    throw new PlainError(
      `The court is not waiting for randomness (phase ${PHASES[Number(phase)]}, epoch ${epoch}): nothing to fulfil.`,
    );
  }
  const { ChainlinkVRFSource__factory, VRFCoordinatorV2_5Mock__factory } = await import("../typechain-types");
  const [, , source] = await court.contracts();
  const coordinatorAddress = await ChainlinkVRFSource__factory.connect(source, ctx.signer)
    .s_vrfCoordinator()
    .catch(() => ZeroAddress);
  const coordinator = VRFCoordinatorV2_5Mock__factory.connect(coordinatorAddress, ctx.signer);
  const isMock =
    coordinatorAddress !== ZeroAddress &&
    (await ctx.hre.ethers.provider.getCode(coordinatorAddress)) !== "0x" &&
    (await coordinator.i_wei_per_unit_link().then(
      () => true,
      () => false,
    ));
  if (!isMock) {
    throw new PlainError(
      `The court's randomness source ${source} does not use the VRF coordinator mock (its coordinator is ` +
        `${coordinatorAddress}): on a real network the coordinator's nodes fulfil request ${requestId} themselves.`,
    );
  }
  const receipt = await send(c.words, () =>
    word === undefined
      ? coordinator.fulfillRandomWords(requestId, source)
      : coordinator.fulfillRandomWordsWithOverride(requestId, source, [word]),
  );
  const vrf = ChainlinkVRFSource__factory.connect(source, ctx.signer);
  let delivered = false;
  let received: bigint | undefined;
  for (const log of receipt.logs) {
    if (getAddress(log.address) !== getAddress(source)) continue;
    const parsed = vrf.interface.parseLog(log);
    if (parsed?.name === "RandomnessFulfilled") [received, delivered] = [parsed.args.word, parsed.args.delivered];
  }
  return { epoch, requestId, word: received, delivered, receipt, lines: await describeCourtReceipt(c, receipt) };
}

withCommonParams(
  task(
    "vrf:fulfill",
    "Local networks: the VRF coordinator mock answers the court's pending randomness request",
  ).addOptionalParam("word", "The random word to deliver (default: the mock's own)", undefined, types.string),
).setAction(
  withPlainErrors(async (args: CommonArgs & { word?: string }, hre) => {
    const c = await courtContext(hre, args.from);
    let word: bigint | undefined;
    if (args.word !== undefined) {
      try {
        word = BigInt(args.word);
      } catch {
        throw new PlainError(`"${args.word}" is not a number (decimal or 0x-hex).`);
      }
    }
    const { epoch, requestId, word: delivered, delivered: ok, receipt, lines } = await fulfilRandomness(c, word);
    const [phase] = await c.court.drawState();
    const data = {
      epoch,
      requestId,
      word: delivered,
      delivered: ok,
      phase: PHASES[Number(phase)],
      events: lines,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      console.log(
        d.delivered
          ? `Request ${d.requestId} fulfilled: epoch ${d.epoch}'s random word reached the court (phase ${d.phase}).`
          : `Request ${d.requestId} fulfilled, but the court did not take the word (kept for redelivery).`,
      );
      for (const line of d.events) console.log(`  ${line}`);
    });
  }),
);
