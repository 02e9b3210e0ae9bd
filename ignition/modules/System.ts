import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { keccak256, toUtf8Bytes } from "ethers";

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

  // TaskEscrow: debits spending policies on the registry and records outcomes in Reputation.
  // Fees are snapshotted per task; payment tokens and the arbitrator are set afterwards
  // (Market module on local networks and the testnet).
  const treasury = m.getParameter("treasury", admin);
  const protocolFeeBps = m.getParameter("protocolFeeBps", 100);
  const arbitrationFeeBps = m.getParameter("arbitrationFeeBps", 500);
  const escrowImpl = m.contract("TaskEscrow", [], { id: "TaskEscrowImpl" });
  const escrowProxy = m.contract(
    "ERC1967Proxy",
    [
      escrowImpl,
      m.encodeFunctionCall(escrowImpl, "initialize", [
        admin,
        registryProxy,
        reputationProxy,
        treasury,
        protocolFeeBps,
        arbitrationFeeBps,
      ]),
    ],
    { id: "TaskEscrowProxy" },
  );
  const escrow = m.contractAt("TaskEscrow", escrowProxy, { id: "TaskEscrow" });
  m.call(registry, "grantRole", [keccak256(toUtf8Bytes("SPENDER_ROLE")), escrow], { id: "EscrowSpender" });
  m.call(reputation, "grantRole", [keccak256(toUtf8Bytes("REPORTER_ROLE")), escrow], { id: "EscrowReporter" });

  // PayPerUse: prices from the catalog, debits spending policies, records calls in Reputation.
  // Payment tokens are allowed afterwards (Market module on local networks and the testnet).
  const payPerUseFeeBps = m.getParameter("payPerUseFeeBps", 100);
  const closeGrace = m.getParameter("closeGrace", 3_600);
  const payPerUseImpl = m.contract("PayPerUse", [], { id: "PayPerUseImpl" });
  const payPerUseProxy = m.contract(
    "ERC1967Proxy",
    [
      payPerUseImpl,
      m.encodeFunctionCall(payPerUseImpl, "initialize", [
        admin,
        registryProxy,
        reputationProxy,
        treasury,
        payPerUseFeeBps,
        closeGrace,
      ]),
    ],
    { id: "PayPerUseProxy" },
  );
  const payPerUse = m.contractAt("PayPerUse", payPerUseProxy, { id: "PayPerUse" });
  m.call(registry, "grantRole", [keccak256(toUtf8Bytes("SPENDER_ROLE")), payPerUse], { id: "PayPerUseSpender" });
  m.call(reputation, "grantRole", [keccak256(toUtf8Bytes("REPORTER_ROLE")), payPerUse], {
    id: "PayPerUseReporter",
  });

  return {
    registry,
    reputation,
    escrow,
    payPerUse,
    registryImpl,
    reputationImpl,
    escrowImpl,
    payPerUseImpl,
    operatorPolicy,
    serviceCatalog,
  };
});
