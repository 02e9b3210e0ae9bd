// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JuryLogic} from "../court/JuryLogic.sol";

/**
 * @title CourtStorageLayoutHarness
 * @notice Test-only. Holds one `JuryLogic.Court` as a state variable, so that the compiler's
 *         `storageLayout` output lists the court's namespace struct (EvaluatorStaking keeps it at
 *         the ERC-7201 slot, where the upgrades plugin does not see it). Read by
 *         `test/upgrade/CourtStorageLayout.test.ts`.
 * @dev Never deployed. Its only state variable sits at slot 0, so member slots are relative to
 *      the namespace's base slot.
 */
contract CourtStorageLayoutHarness {
    JuryLogic.Court internal court;
}
