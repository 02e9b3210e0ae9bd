import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Test stand-ins for local networks and the X Layer testnet, never for mainnet:
 * 6-decimal USDT and USDG with EIP-2612 permit and EIP-3009, an 18-decimal OKB, and a test
 * arbitrator that rules when told to (until the court, EvaluatorStaking, takes its place).
 */
export default buildModule("Mocks", (m) => {
  const usdt = m.contract("MockStablecoin", ["Tether USD (mock)", "USDT"], { id: "USDT" });
  const usdg = m.contract("MockStablecoin", ["Global Dollar (mock)", "USDG"], { id: "USDG" });
  const okb = m.contract("MockOKB", [], { id: "OKB" });
  const arbitrator = m.contract("MockArbitrator", [], { id: "Arbitrator" });
  return { usdt, usdg, okb, arbitrator };
});
