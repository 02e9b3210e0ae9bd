// reputation:* — an agent's credit record, as Reputation keeps it.
import { task, types } from "hardhat/config";
import {
  type CommonArgs,
  TOKEN_SYMBOLS,
  describeToken,
  formatAmount,
  formatBps,
  formatTimestamp,
  getContext,
  output,
  printFields,
  printTable,
  resolveAccount,
  structToObject,
  withCommonParams,
} from "./lib/context";
import { withPlainErrors } from "./lib/errors";

withCommonParams(
  task("reputation:show", "An agent's score, record, volumes and raters")
    .addParam("id", "Agent id", undefined, types.bigint)
    .addOptionalParam(
      "rater",
      "Also show this rater's unused feedback rights (address or account index)",
      undefined,
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: CommonArgs & { id: bigint; rater?: string }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { registry, reputation } = ctx;
    await registry.ownerOf(args.id); // reverts for an unknown agent
    const scoreBps = await reputation.score(args.id);
    const volumes = [];
    for (const symbol of TOKEN_SYMBOLS.filter((s) => s !== "OKB")) {
      const address = ctx.addresses.tokens[symbol];
      if (!address) continue;
      const token = await describeToken(ctx, address);
      const volume = await reputation.getVolume(args.id, address);
      volumes.push({ token: symbol, address, volume, text: formatAmount(volume, token.decimals, symbol) });
    }
    const clients = [];
    for (const client of await reputation.getClients(args.id)) {
      clients.push({ client, lastFeedbackIndex: await reputation.getLastIndex(args.id, client) });
    }
    let rater;
    if (args.rater !== undefined) {
      const address = await resolveAccount(hre, args.rater);
      const [rights, weight] = await reputation.feedbackRights(args.id, address);
      rater = { address, unusedRights: rights, weight };
    }
    const data = {
      agentId: args.id,
      scoreBps,
      score: formatBps(scoreBps),
      record: structToObject(await reputation.getRecord(args.id)),
      volumes,
      clients,
      rater,
    };
    return output(hre, args.json, data, (d) => {
      const r = d.record;
      printFields(
        {
          score: d.score,
          "tasks completed / auto-completed / refunded": `${r.tasksCompleted} / ${r.tasksAutoCompleted} / ${r.tasksRefunded}`,
          "disputes won / lost / split": `${r.disputesWon} / ${r.disputesLost} / ${r.disputesSplit}`,
          "tasks as client": r.tasksAsClient,
          "calls served (settlements)": `${r.callsServed} (${r.settlementsServed})`,
          "evaluator votes coherent / incoherent": `${r.votesCoherent} / ${r.votesIncoherent}`,
          ratings: r.ratingCount,
          "rating mean":
            r.ratingWeight === 0n ? "none (neutral 50.00%)" : formatBps(r.ratingWeightedBps / r.ratingWeight),
          "rating weight": r.ratingWeight,
          "last activity": formatTimestamp(r.lastActivity),
          ...Object.fromEntries(d.volumes.map((v) => [`volume ${v.token}`, v.text])),
        },
        { title: `Reputation of agent #${d.agentId}` },
      );
      printTable(
        d.clients.map((c) => ({ client: c.client, "last feedback index": c.lastFeedbackIndex })),
        { title: "Clients who gave feedback" },
      );
      if (d.rater) {
        console.log(
          `${d.rater.address} holds ${d.rater.unusedRights} unused right(s) to rate agent #${d.agentId}` +
            ` (total weight ${d.rater.weight}, in the settled tokens' smallest units).`,
        );
      }
    });
  }),
);
