import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import SystemModule from "./System";

/**
 * Upgrades every proxy of the System module to the implementations in the current artifacts.
 * Check storage layouts first (`npm test` runs the upgrade-safety suite with the upgrades
 * plugin): Ignition itself does not validate them. The caller needs UPGRADER_ROLE.
 */
export default buildModule("Upgrade", (m) => {
  const { registry, reputation, escrow, payPerUse } = m.useModule(SystemModule);

  // Fresh libraries: the new implementation links the libraries of the current artifacts.
  const operatorPolicy = m.library("OperatorPolicy", { id: "OperatorPolicyNext" });
  const serviceCatalog = m.library("ServiceCatalog", { id: "ServiceCatalogNext" });
  const registryImpl = m.contract("AgentRegistry", [], {
    id: "AgentRegistryImplNext",
    libraries: { OperatorPolicy: operatorPolicy, ServiceCatalog: serviceCatalog },
  });
  m.call(registry, "upgradeToAndCall", [registryImpl, "0x"], { id: "UpgradeAgentRegistry" });

  const reputationImpl = m.contract("Reputation", [], { id: "ReputationImplNext" });
  m.call(reputation, "upgradeToAndCall", [reputationImpl, "0x"], { id: "UpgradeReputation" });

  const escrowImpl = m.contract("TaskEscrow", [], { id: "TaskEscrowImplNext" });
  m.call(escrow, "upgradeToAndCall", [escrowImpl, "0x"], { id: "UpgradeTaskEscrow" });

  const payPerUseImpl = m.contract("PayPerUse", [], { id: "PayPerUseImplNext" });
  m.call(payPerUse, "upgradeToAndCall", [payPerUseImpl, "0x"], { id: "UpgradePayPerUse" });

  return { registry, reputation, escrow, payPerUse, registryImpl, reputationImpl, escrowImpl, payPerUseImpl };
});
