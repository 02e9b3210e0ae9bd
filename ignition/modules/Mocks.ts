import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Test stand-ins for local networks and the X Layer testnet, never for mainnet:
 * 6-decimal USDT and USDG with EIP-2612 permit and EIP-3009, an 18-decimal OKB, a test
 * arbitrator that rules when told to, and Chainlink's VRF v2.5 coordinator mock (the Market module
 * opens and funds its subscription; Chainlink VRF is not offered on X Layer; `npx hardhat vrf:fulfill` answers).
 */
export default buildModule("Mocks", (m) => {
  const usdt = m.contract("MockStablecoin", ["Tether USD (mock)", "USDT"], { id: "USDT" });
  const usdg = m.contract("MockStablecoin", ["Global Dollar (mock)", "USDG"], { id: "USDG" });
  const okb = m.contract("MockOKB", [], { id: "OKB" });
  const arbitrator = m.contract("MockArbitrator", [], { id: "Arbitrator" });
  // Base fee 0.1 LINK, gas price 1 gwei, 0.004 ETH per LINK: the values of Chainlink's examples.
  const vrfCoordinator = m.contract("VRFCoordinatorV2_5Mock", [10n ** 17n, 10n ** 9n, 4n * 10n ** 15n], {
    id: "VRFCoordinator",
  });
  return { usdt, usdg, okb, arbitrator, vrfCoordinator };
});
