import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import SystemModule from "./System";
import { buildCourt } from "../lib/court";

/**
 * The court on a network with a real Chainlink VRF v2.5 coordinator: parameters `vrfCoordinator`
 * and `vrfSubscriptionId` (a subscription you own and fund; add the `VRFSource` adapter as its
 * consumer), optional `vrfKeyHash`, `vrfConfirmations`, `vrfCallbackGasLimit`, `vrfNativePayment`,
 * `stakeToken` (default: the native coin) and `treasury`. Then plug it into TaskEscrow
 * (`setArbitrator`, admin). On local networks and the X Layer testnet the Market module deploys
 * the court on the coordinator mock and plugs it in.
 */
export default buildModule("Court", (m) => {
  const system = m.useModule(SystemModule);
  const coordinator = m.getParameter<string>("vrfCoordinator");
  const subscriptionId = m.getParameter<bigint>("vrfSubscriptionId");
  return { ...buildCourt(m, system, coordinator, { id: subscriptionId }) };
});
