import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Test stand-ins for local networks and the X Layer testnet, never for mainnet:
 * 6-decimal USDT and USDG with EIP-2612 permit and EIP-3009, and an 18-decimal OKB.
 */
export default buildModule("Mocks", (m) => {
  const usdt = m.contract("MockStablecoin", ["Tether USD (mock)", "USDT"], { id: "USDT" });
  const usdg = m.contract("MockStablecoin", ["Global Dollar (mock)", "USDG"], { id: "USDG" });
  const okb = m.contract("MockOKB", [], { id: "OKB" });
  return { usdt, usdg, okb };
});
