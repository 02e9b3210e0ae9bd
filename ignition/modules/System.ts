import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * The whole protocol: implementations, ERC1967 (UUPS) proxies initialised in their constructor
 * call, and the roles that wire the contracts together. The deployer is the first admin of
 * every contract; hand the roles to a timelock or multisig afterwards (README, "Operations").
 */
export default buildModule("System", (m) => {
  const admin = m.getAccount(0);

  // AgentRegistry: two external libraries keep it far below EIP-170.
  const operatorPolicy = m.library("OperatorPolicy");
  const serviceCatalog = m.library("ServiceCatalog");
  const registryImpl = m.contract("AgentRegistry", [], {
    id: "AgentRegistryImpl",
    libraries: { OperatorPolicy: operatorPolicy, ServiceCatalog: serviceCatalog },
  });
  const registryProxy = m.contract(
    "ERC1967Proxy",
    [registryImpl, m.encodeFunctionCall(registryImpl, "initialize", [admin])],
    { id: "AgentRegistryProxy" },
  );
  const registry = m.contractAt("AgentRegistry", registryProxy, { id: "AgentRegistry" });

  // Reputation reads identities from the registry; the registry reads scores back.
  const reputationImpl = m.contract("Reputation", [], { id: "ReputationImpl" });
  const reputationProxy = m.contract(
    "ERC1967Proxy",
    [reputationImpl, m.encodeFunctionCall(reputationImpl, "initialize", [admin, registryProxy])],
    { id: "ReputationProxy" },
  );
  const reputation = m.contractAt("Reputation", reputationProxy, { id: "Reputation" });
  m.call(registry, "setReputation", [reputation], { id: "RegistrySetReputation" });

  return { registry, reputation, registryImpl, reputationImpl, operatorPolicy, serviceCatalog };
});
