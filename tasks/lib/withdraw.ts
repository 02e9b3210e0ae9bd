// The withdraw task that TaskEscrow and PayPerUse share: both keep credits (payouts that failed)
// and protocol fees per token, with the same withdraw / sweepFees calls and events.
import { task, types } from "hardhat/config";
import type { ContractTransactionReceipt } from "ethers";
import type { PayPerUse, TaskEscrow } from "../../typechain-types";
import {
  type CommonArgs,
  type Context,
  confirm,
  findEvent,
  formatAmount,
  getContext,
  output,
  resolveAccount,
  resolveToken,
  withCommonParams,
} from "./context";
import { plainly, withPlainErrors } from "./errors";

export interface WithdrawTaskSpec {
  name: string;
  description: string;
  /** The contract that holds the credits and fees. */
  contract: (ctx: Context) => TaskEscrow | PayPerUse;
  /** How the output names the fees swept, e.g. "protocol fees". */
  fees: string;
  /** How the output names the credit withdrawn, e.g. "credit". */
  credit: string;
}

/** Defines a task that collects the signer's credit in a contract, or with --fees sweeps its fees to the treasury. */
export function withdrawTask(spec: WithdrawTaskSpec): void {
  withCommonParams(
    task(spec.name, spec.description)
      .addOptionalParam("token", "Token: USDT, USDG or an address", "USDT", types.string)
      .addOptionalParam(
        "to",
        "Where the credit goes (address or account index; default: the signer)",
        undefined,
        types.string,
      )
      .addFlag("fees", "Sweep the accrued protocol fees to the treasury instead (anyone may)"),
  ).setAction(
    withPlainErrors(async (args: CommonArgs & { token: string; to?: string; fees: boolean }, hre) => {
      const ctx = await getContext(hre, args.from);
      const contract = spec.contract(ctx);
      const token = await resolveToken(ctx, args.token);
      const words = {
        decimals: token.decimals,
        symbol: token.symbol,
        tokens: { [token.address]: token },
        names: { [ctx.signer.address]: "the signer" },
      };
      let amount: bigint;
      let to: string;
      let receipt: ContractTransactionReceipt;
      if (args.fees) {
        receipt = await plainly(() => confirm(contract.sweepFees(token.address)), words);
        const swept = findEvent(contract.interface, receipt, "FeesSwept");
        [amount, to] = [swept.amount, swept.treasury];
      } else {
        const recipient = args.to !== undefined ? await resolveAccount(hre, args.to) : ctx.signer.address;
        receipt = await plainly(() => confirm(contract.withdraw(token.address, recipient)), words);
        const withdrawn = findEvent(contract.interface, receipt, "CreditWithdrawn");
        [amount, to] = [withdrawn.amount, withdrawn.to];
      }
      const data = {
        kind: args.fees ? "fees" : "credit",
        token: token.symbol,
        amount,
        amountText: formatAmount(amount, token.decimals, token.symbol),
        to,
        tx: receipt.hash,
      };
      return output(hre, args.json, data, (d) =>
        console.log(
          d.kind === "fees"
            ? `Swept ${d.amountText} of ${spec.fees} to the treasury ${d.to}.`
            : `Withdrew ${d.amountText} of ${spec.credit} to ${d.to}.`,
        ),
      );
    }),
  );
}
