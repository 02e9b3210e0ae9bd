import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import MocksModule from "./Mocks";
import SystemModule from "./System";
import { buildCourt } from "../lib/court";

/**
 * A ready marketplace for local networks and the X Layer testnet: the System module, the Mocks
 * module, the stand-in stablecoins allow-listed in TaskEscrow (minimum budget `minBudget`, in
 * 6-decimal units) and in PayPerUse, and the court (EvaluatorStaking, native-coin stakes by
 * default) on the VRF coordinator mock's funded subscription, plugged into TaskEscrow as its
 * arbitrator. Never for mainnet.
 */
export default buildModule("Market", (m) => {
  const system = m.useModule(SystemModule);
  const mocks = m.useModule(MocksModule);
  const minBudget = m.getParameter("minBudget", 1_000_000n);
  m.call(system.escrow, "setToken", [mocks.usdt, minBudget], { id: "AllowUSDT" });
  m.call(system.escrow, "setToken", [mocks.usdg, minBudget], { id: "AllowUSDG" });
  m.call(system.payPerUse, "setToken", [mocks.usdt, true], { id: "PayPerUseAllowUSDT" });
  m.call(system.payPerUse, "setToken", [mocks.usdg, true], { id: "PayPerUseAllowUSDG" });
  const court = buildCourt(m, system, mocks.vrfCoordinator, "mock");
  m.call(system.escrow, "setArbitrator", [court.court], { id: "PlugArbitrator" });
  return { ...system, ...mocks, ...court };
});
