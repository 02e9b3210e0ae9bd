import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Upgrades the court (EvaluatorStaking proxy at parameter `court`) to the implementation in the
 * current artifacts, with a fresh JuryLogic library. Check the storage layout first (`npm test`
 * runs test/upgrade/EvaluatorStakingUpgrade.test.ts with the upgrades plugin): Ignition does not.
 * The caller needs UPGRADER_ROLE on the court.
 */
export default buildModule("CourtUpgrade", (m) => {
  const court = m.contractAt("EvaluatorStaking", m.getParameter<string>("court"), { id: "Court" });
  const juryLogic = m.library("JuryLogic", { id: "JuryLogicNext" });
  const courtImpl = m.contract("EvaluatorStaking", [], {
    id: "EvaluatorStakingImplNext",
    libraries: { JuryLogic: juryLogic },
  });
  m.call(court, "upgradeToAndCall", [courtImpl, "0x"], { id: "UpgradeEvaluatorStaking" });
  return { court, courtImpl, juryLogic };
});
