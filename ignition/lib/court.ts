import type {
  ArgumentType,
  CallableContractFuture,
  IgnitionModuleBuilder,
  ModuleParameterRuntimeValue,
} from "@nomicfoundation/ignition-core";
import { keccak256, toUtf8Bytes, ZeroAddress } from "ethers";

type Contract = CallableContractFuture<string>;
type System = { registry: Contract; reputation: Contract; escrow: Contract };

/** Case parameters of the court on a new deployment (bounds in EvaluatorStaking/JuryLogic). */
export const COURT_PARAMS = {
  minStake: 10n * 10n ** 18n, // 10 OKB: least free stake to be drawn, locked per seat
  commitPeriod: 3_600,
  revealPeriod: 3_600,
  appealPeriod: 3_600,
  jurorCooldown: 86_400,
  slashMinorityBps: 1_000, // 10% of the seat's lock for voting against the ruling
  slashTimeoutBps: 2_000, // 20% and a cooldown for missing the commit or the reveal
  appealFeeBps: 10_000, // an appeal pays the first round's fee per seat
  jurySize: 3,
  maxRounds: 3, // 3, 7, 15 jurors
};

/** Global timings of the court on a new deployment. */
export const COURT_TIMING = {
  unstakeDelay: 7 * 86_400,
  minStakingTime: 3_600, // least Staking phase between draw epochs (JuryLogic: at least 1 hour)
  maxDrawingTime: 3_600,
  randomnessTimeout: 86_400,
};

/**
 * The court: JuryLogic library, EvaluatorStaking behind an ERC1967 proxy, and its Chainlink VRF
 * v2.5 adapter on `coordinator` and a subscription. The court gets REPORTER_ROLE on Reputation
 * and TaskEscrow the ARBITRABLE_ROLE on the court. With `"mock"` (VRFCoordinatorV2_5Mock), a
 * subscription is opened, funded and given the adapter as consumer; otherwise the subscription
 * `{ id }` is yours to fund and to add the adapter to.
 */
export function buildCourt(
  m: IgnitionModuleBuilder,
  system: System,
  coordinator: Contract | ModuleParameterRuntimeValue<string>,
  subscription: { id: ArgumentType } | "mock",
) {
  let subscriptionId: ArgumentType = subscription === "mock" ? 0n : subscription.id;
  if (subscription === "mock") {
    const create = m.call(coordinator as Contract, "createSubscription", [], { id: "VRFCreateSubscription" });
    subscriptionId = m.readEventArgument(create, "SubscriptionCreated", "subId", { id: "VRFSubscriptionId" });
    // The mock's LINK balance is bookkeeping only: fund it generously.
    m.call(coordinator as Contract, "fundSubscription", [subscriptionId, 1_000n * 10n ** 18n], {
      id: "VRFFundSubscription",
    });
  }
  const admin = m.getAccount(0);
  const treasury = m.getParameter("treasury", admin);
  const stakeToken = m.getParameter("stakeToken", ZeroAddress);
  const vrfConfig = {
    keyHash: m.getParameter("vrfKeyHash", keccak256(toUtf8Bytes("agent-market local key"))),
    subscriptionId,
    requestConfirmations: m.getParameter("vrfConfirmations", 3),
    callbackGasLimit: m.getParameter("vrfCallbackGasLimit", 200_000),
    nativePayment: m.getParameter("vrfNativePayment", false),
  };
  const vrfSource = m.contract("ChainlinkVRFSource", [coordinator, vrfConfig], { id: "VRFSource" });
  const juryLogic = m.library("JuryLogic");
  const courtImpl = m.contract("EvaluatorStaking", [], {
    id: "EvaluatorStakingImpl",
    libraries: { JuryLogic: juryLogic },
  });
  const courtProxy = m.contract(
    "ERC1967Proxy",
    [
      courtImpl,
      m.encodeFunctionCall(courtImpl, "initialize", [
        admin,
        system.registry,
        system.reputation,
        vrfSource,
        stakeToken,
        treasury,
        COURT_PARAMS,
        COURT_TIMING,
      ]),
    ],
    { id: "EvaluatorStakingProxy" },
  );
  const court = m.contractAt("EvaluatorStaking", courtProxy, { id: "EvaluatorStaking" });
  m.call(vrfSource, "setConsumer", [court], { id: "VRFSourceConsumer" });
  if (subscription === "mock") {
    m.call(coordinator as Contract, "addConsumer", [subscriptionId, vrfSource], { id: "VRFAddConsumer" });
  }
  m.call(system.reputation, "grantRole", [keccak256(toUtf8Bytes("REPORTER_ROLE")), court], { id: "CourtReporter" });
  m.call(court, "grantRole", [keccak256(toUtf8Bytes("ARBITRABLE_ROLE")), system.escrow], { id: "EscrowArbitrable" });
  return { court, courtImpl, vrfSource, juryLogic };
}
