// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Makes Hardhat build the ERC1967Proxy artifact that the Ignition modules deploy.
// solhint-disable-next-line no-unused-import
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";

// Makes Hardhat build Chainlink's VRF v2.5 coordinator mock, which the Mocks module deploys on
// local networks and the X Layer testnet (Chainlink VRF is not offered on X Layer).
// solhint-disable-next-line no-unused-import
import {VRFCoordinatorV2_5Mock} from "@chainlink/contracts/src/v0.8/vrf/mocks/VRFCoordinatorV2_5Mock.sol";
