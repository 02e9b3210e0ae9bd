import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import MocksModule from "./Mocks";
import SystemModule from "./System";

/**
 * A ready marketplace for local networks and the X Layer testnet: the System module, the Mocks
 * module, the stand-in stablecoins allow-listed in TaskEscrow (minimum budget `minBudget`, in
 * 6-decimal units) and in PayPerUse and the test arbitrator plugged in. Never for mainnet.
 */
export default buildModule("Market", (m) => {
  const system = m.useModule(SystemModule);
  const mocks = m.useModule(MocksModule);
  const minBudget = m.getParameter("minBudget", 1_000_000n);
  m.call(system.escrow, "setToken", [mocks.usdt, minBudget], { id: "AllowUSDT" });
  m.call(system.escrow, "setToken", [mocks.usdg, minBudget], { id: "AllowUSDG" });
  m.call(system.payPerUse, "setToken", [mocks.usdt, true], { id: "PayPerUseAllowUSDT" });
  m.call(system.payPerUse, "setToken", [mocks.usdg, true], { id: "PayPerUseAllowUSDG" });
  m.call(system.escrow, "setArbitrator", [mocks.arbitrator], { id: "PlugArbitrator" });
  return { ...system, ...mocks };
});
