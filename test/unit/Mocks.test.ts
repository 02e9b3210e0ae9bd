import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { MockERC1271Wallet, MockStablecoin } from "../../typechain-types";
import { PERMIT_TYPES } from "../../tasks/lib/context";

const USDC = (n: number | string) => ethers.parseUnits(String(n), 6);
const MAGIC_VALUE = "0x1626ba7e";
const INVALID_VALUE = "0xffffffff";
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const TRANSFER_VRS = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)";
const TRANSFER_BYTES = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)";
const RECEIVE_VRS = "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)";
const RECEIVE_BYTES = "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)";

const AUTHORIZATION_FIELDS = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" },
  { name: "validBefore", type: "uint256" },
  { name: "nonce", type: "bytes32" },
];

type Kind = "TransferWithAuthorization" | "ReceiveWithAuthorization";

interface Authorization {
  from: string;
  to: string;
  value: bigint;
  validAfter: bigint;
  validBefore: bigint;
  nonce: string;
}

async function domainOf(token: MockStablecoin) {
  return {
    name: await token.name(),
    version: "1",
    chainId: (await ethers.provider.getNetwork()).chainId,
    verifyingContract: await token.getAddress(),
  };
}

async function signAuthorization(
  token: MockStablecoin,
  signer: HardhatEthersSigner,
  kind: Kind,
  auth: Authorization,
): Promise<string> {
  return signer.signTypedData(await domainOf(token), { [kind]: AUTHORIZATION_FIELDS }, auth);
}

async function signCancel(
  token: MockStablecoin,
  signer: HardhatEthersSigner,
  authorizer: string,
  nonce: string,
): Promise<string> {
  const types = {
    CancelAuthorization: [
      { name: "authorizer", type: "address" },
      { name: "nonce", type: "bytes32" },
    ],
  };
  return signer.signTypedData(await domainOf(token), types, { authorizer, nonce });
}

/** EIP-3009 call helpers: `token` may already be connected to the caller. */
function transferBytes(token: MockStablecoin, a: Authorization, signature: string) {
  return token[TRANSFER_BYTES](a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, signature);
}

function receiveBytes(token: MockStablecoin, a: Authorization, signature: string) {
  return token[RECEIVE_BYTES](a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, signature);
}

function transferVrs(token: MockStablecoin, a: Authorization, signature: string) {
  const { v, r, s } = ethers.Signature.from(signature);
  return token[TRANSFER_VRS](a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
}

function receiveVrs(token: MockStablecoin, a: Authorization, signature: string) {
  const { v, r, s } = ethers.Signature.from(signature);
  return token[RECEIVE_VRS](a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
}

/** Flips a signature to its high-s twin: same signer for ecrecover, rejected by OZ ECDSA. */
function malleate(signature: string): string {
  const sig = ethers.Signature.from(signature);
  const highS = ethers.toBeHex(SECP256K1_N - BigInt(sig.s), 32);
  const v = sig.v === 27 ? 28 : 27;
  return ethers.concat([sig.r, highS, ethers.toBeHex(v, 1)]);
}

/** Calls the ecrecover precompile (0x01), which, unlike ethers and OZ ECDSA, accepts high-s signatures. */
async function rawEcrecover(digest: string, signature: string): Promise<string> {
  const r = ethers.dataSlice(signature, 0, 32);
  const s = ethers.dataSlice(signature, 32, 64);
  const v = ethers.getBytes(signature)[64];
  const data = ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "uint8", "bytes32", "bytes32"], [digest, v, r, s]);
  const result = await ethers.provider.call({ to: "0x0000000000000000000000000000000000000001", data });
  return ethers.getAddress(ethers.dataSlice(result, 12));
}

describe("Mocks", function () {
  async function deployFixture() {
    const [deployer, alice, bob, carol] = await ethers.getSigners();
    const stablecoin = await ethers.deployContract("MockStablecoin", ["Mock USD Coin", "mUSDC"]);
    const feeToken = await ethers.deployContract("MockFeeOnTransferToken", [100]);
    const blacklistToken = await ethers.deployContract("MockBlacklistToken");
    const reentrantToken = await ethers.deployContract("MockReentrantToken");
    const wallet = await ethers.deployContract("MockERC1271Wallet", [alice.address]);
    const okb = await ethers.deployContract("MockOKB");
    const revertingReceiver = await ethers.deployContract("MockRevertingReceiver");

    await stablecoin.mint(alice.address, USDC(1_000));
    await stablecoin.mint(await wallet.getAddress(), USDC(1_000));

    return {
      deployer,
      alice,
      bob,
      carol,
      stablecoin,
      feeToken,
      blacklistToken,
      reentrantToken,
      wallet,
      okb,
      revertingReceiver,
    };
  }

  async function authorizationFor(from: string, to: string, value: bigint): Promise<Authorization> {
    const now = BigInt(await time.latest());
    return { from, to, value, validAfter: 0n, validBefore: now + 3600n, nonce: ethers.hexlify(ethers.randomBytes(32)) };
  }

  describe("MockStablecoin", function () {
    describe("metadata and mint", function () {
      it("has 6 decimals, the constructor name and symbol, and the EIP-3009 typehashes", async function () {
        const { stablecoin } = await loadFixture(deployFixture);
        expect(await stablecoin.decimals()).to.equal(6);
        expect(await stablecoin.name()).to.equal("Mock USD Coin");
        expect(await stablecoin.symbol()).to.equal("mUSDC");
        expect(await stablecoin.TRANSFER_WITH_AUTHORIZATION_TYPEHASH()).to.equal(
          ethers.id(
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
          ),
        );
        expect(await stablecoin.RECEIVE_WITH_AUTHORIZATION_TYPEHASH()).to.equal(
          ethers.id(
            "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
          ),
        );
        expect(await stablecoin.CANCEL_AUTHORIZATION_TYPEHASH()).to.equal(
          ethers.id("CancelAuthorization(address authorizer,bytes32 nonce)"),
        );
      });

      it("lets anyone mint", async function () {
        const { stablecoin, bob, carol } = await loadFixture(deployFixture);
        await expect(stablecoin.connect(bob).mint(carol.address, USDC(5)))
          .to.emit(stablecoin, "Transfer")
          .withArgs(ethers.ZeroAddress, carol.address, USDC(5));
        expect(await stablecoin.balanceOf(carol.address)).to.equal(USDC(5));
      });
    });

    describe("permit", function () {
      it("sets the allowance from an EIP-2612 signature and bumps the nonce", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const deadline = BigInt(await time.latest()) + 3600n;
        const value = USDC(250);
        const signature = await alice.signTypedData(await domainOf(stablecoin), PERMIT_TYPES, {
          owner: alice.address,
          spender: bob.address,
          value,
          nonce: 0n,
          deadline,
        });
        const { v, r, s } = ethers.Signature.from(signature);

        await expect(stablecoin.connect(bob).permit(alice.address, bob.address, value, deadline, v, r, s))
          .to.emit(stablecoin, "Approval")
          .withArgs(alice.address, bob.address, value);
        expect(await stablecoin.allowance(alice.address, bob.address)).to.equal(value);
        expect(await stablecoin.nonces(alice.address)).to.equal(1n);
      });
    });

    describe("transferWithAuthorization", function () {
      it("moves the exact amount and emits AuthorizationUsed (v, r, s)", async function () {
        const { stablecoin, alice, bob, carol } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(123.456789));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        const tx = transferVrs(stablecoin.connect(carol), auth, signature);
        await expect(tx).to.emit(stablecoin, "AuthorizationUsed").withArgs(alice.address, auth.nonce);
        await expect(tx).to.emit(stablecoin, "Transfer").withArgs(alice.address, bob.address, auth.value);
        await expect(tx).to.changeTokenBalances(stablecoin, [alice, bob, carol], [-auth.value, auth.value, 0n]);
        expect(await stablecoin.authorizationState(alice.address, auth.nonce)).to.equal(true);
      });

      it("moves the exact amount with a bytes signature", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(10));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await expect(transferBytes(stablecoin, auth, signature)).to.changeTokenBalances(
          stablecoin,
          [alice, bob],
          [-auth.value, auth.value],
        );
      });

      it("reverts with MockStablecoinAuthorizationUsed when the nonce is reused", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await transferBytes(stablecoin, auth, signature);
        await expect(transferBytes(stablecoin, auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationUsed")
          .withArgs(alice.address, auth.nonce);
      });

      it("reverts with MockStablecoinAuthorizationNotYetValid at validAfter", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        auth.validAfter = BigInt(await time.latest()) + 100n;
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await time.setNextBlockTimestamp(auth.validAfter);
        await expect(transferBytes(stablecoin, auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationNotYetValid")
          .withArgs(auth.validAfter);
      });

      it("succeeds one second after validAfter", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        auth.validAfter = BigInt(await time.latest()) + 100n;
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await time.setNextBlockTimestamp(auth.validAfter + 1n);
        await expect(transferBytes(stablecoin, auth, signature)).to.changeTokenBalances(
          stablecoin,
          [alice, bob],
          [-auth.value, auth.value],
        );
      });

      it("reverts with MockStablecoinAuthorizationExpired at validBefore", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await time.setNextBlockTimestamp(auth.validBefore);
        await expect(transferBytes(stablecoin, auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationExpired")
          .withArgs(auth.validBefore);
      });

      it("reverts with MockStablecoinInvalidSignature when signed by someone else", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, bob, "TransferWithAuthorization", auth);

        await expect(transferVrs(stablecoin, auth, signature)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });

      it("reverts with MockStablecoinInvalidSignature when a signed field is altered", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await expect(
          transferBytes(stablecoin, { ...auth, value: auth.value + 1n }, signature),
        ).to.be.revertedWithCustomError(stablecoin, "MockStablecoinInvalidSignature");
      });

      it("reverts with MockStablecoinInvalidSignature for a ReceiveWithAuthorization signature", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);

        await expect(transferBytes(stablecoin, auth, signature)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });

      it("reverts with MockStablecoinInvalidSignature for a malleable (high-s) signature", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);
        const highS = malleate(signature);
        // Sanity: the malleated signature still recovers to alice with the raw ecrecover precompile.
        const digest = ethers.TypedDataEncoder.hash(
          await domainOf(stablecoin),
          { TransferWithAuthorization: AUTHORIZATION_FIELDS },
          auth,
        );
        expect(await rawEcrecover(digest, highS)).to.equal(alice.address);

        await expect(transferBytes(stablecoin, auth, highS)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });
    });

    describe("receiveWithAuthorization", function () {
      it("moves the exact amount when called by the payee and emits AuthorizationUsed (v, r, s)", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(42));
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);

        const tx = receiveVrs(stablecoin.connect(bob), auth, signature);
        await expect(tx).to.emit(stablecoin, "AuthorizationUsed").withArgs(alice.address, auth.nonce);
        await expect(tx).to.changeTokenBalances(stablecoin, [alice, bob], [-auth.value, auth.value]);
        expect(await stablecoin.authorizationState(alice.address, auth.nonce)).to.equal(true);
      });

      it("moves the exact amount with a bytes signature", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(7));
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);

        await expect(receiveBytes(stablecoin.connect(bob), auth, signature)).to.changeTokenBalances(
          stablecoin,
          [alice, bob],
          [-auth.value, auth.value],
        );
      });

      it("reverts with MockStablecoinCallerMustBePayee when called by someone other than `to`", async function () {
        const { stablecoin, alice, bob, carol } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);

        await expect(receiveBytes(stablecoin.connect(carol), auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinCallerMustBePayee")
          .withArgs(carol.address, bob.address);
      });

      it("reverts with MockStablecoinInvalidSignature for a TransferWithAuthorization signature", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        await expect(receiveBytes(stablecoin.connect(bob), auth, signature)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });

      it("reverts with MockStablecoinAuthorizationUsed when the nonce was used by a transfer", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const transferSig = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);
        const receiveSig = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);
        await transferBytes(stablecoin, auth, transferSig);

        await expect(receiveBytes(stablecoin.connect(bob), auth, receiveSig))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationUsed")
          .withArgs(alice.address, auth.nonce);
      });

      it("reverts with MockStablecoinAuthorizationExpired after validBefore", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);
        await time.increaseTo(auth.validBefore + 1n);

        await expect(receiveBytes(stablecoin.connect(bob), auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationExpired")
          .withArgs(auth.validBefore);
      });
    });

    describe("cancelAuthorization", function () {
      it("marks the nonce used and emits AuthorizationCanceled", async function () {
        const { stablecoin, alice, carol } = await loadFixture(deployFixture);
        const nonce = ethers.hexlify(ethers.randomBytes(32));
        const { v, r, s } = ethers.Signature.from(await signCancel(stablecoin, alice, alice.address, nonce));

        expect(await stablecoin.authorizationState(alice.address, nonce)).to.equal(false);
        await expect(stablecoin.connect(carol).cancelAuthorization(alice.address, nonce, v, r, s))
          .to.emit(stablecoin, "AuthorizationCanceled")
          .withArgs(alice.address, nonce);
        expect(await stablecoin.authorizationState(alice.address, nonce)).to.equal(true);
      });

      it("makes a pending transfer authorization unusable", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const auth = await authorizationFor(alice.address, bob.address, USDC(1));
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);
        const { v, r, s } = ethers.Signature.from(await signCancel(stablecoin, alice, alice.address, auth.nonce));
        await stablecoin.cancelAuthorization(alice.address, auth.nonce, v, r, s);

        await expect(transferBytes(stablecoin, auth, signature))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationUsed")
          .withArgs(alice.address, auth.nonce);
      });

      it("reverts with MockStablecoinAuthorizationUsed when canceled twice", async function () {
        const { stablecoin, alice } = await loadFixture(deployFixture);
        const nonce = ethers.hexlify(ethers.randomBytes(32));
        const { v, r, s } = ethers.Signature.from(await signCancel(stablecoin, alice, alice.address, nonce));
        await stablecoin.cancelAuthorization(alice.address, nonce, v, r, s);

        await expect(stablecoin.cancelAuthorization(alice.address, nonce, v, r, s))
          .to.be.revertedWithCustomError(stablecoin, "MockStablecoinAuthorizationUsed")
          .withArgs(alice.address, nonce);
      });

      it("reverts with MockStablecoinInvalidSignature when signed by someone else", async function () {
        const { stablecoin, alice, bob } = await loadFixture(deployFixture);
        const nonce = ethers.hexlify(ethers.randomBytes(32));
        const { v, r, s } = ethers.Signature.from(await signCancel(stablecoin, bob, alice.address, nonce));

        await expect(stablecoin.cancelAuthorization(alice.address, nonce, v, r, s)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });
    });

    describe("ERC-1271 authorizations (MockERC1271Wallet as `from`)", function () {
      async function walletAuthorization(wallet: MockERC1271Wallet, to: string) {
        return authorizationFor(await wallet.getAddress(), to, USDC(300));
      }

      it("transfers from the wallet when its owner signed (bytes overload)", async function () {
        const { stablecoin, wallet, alice, bob } = await loadFixture(deployFixture);
        const auth = await walletAuthorization(wallet, bob.address);
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);

        const tx = transferBytes(stablecoin, auth, signature);
        await expect(tx).to.emit(stablecoin, "AuthorizationUsed").withArgs(auth.from, auth.nonce);
        await expect(tx).to.changeTokenBalances(stablecoin, [wallet, bob], [-auth.value, auth.value]);
      });

      it("transfers from the wallet when its owner signed (v, r, s overload)", async function () {
        const { stablecoin, wallet, alice, bob } = await loadFixture(deployFixture);
        const auth = await walletAuthorization(wallet, bob.address);
        const signature = await signAuthorization(stablecoin, alice, "ReceiveWithAuthorization", auth);

        await expect(receiveVrs(stablecoin.connect(bob), auth, signature)).to.changeTokenBalances(
          stablecoin,
          [wallet, bob],
          [-auth.value, auth.value],
        );
      });

      it("reverts with MockStablecoinInvalidSignature when a non-owner signed", async function () {
        const { stablecoin, wallet, bob } = await loadFixture(deployFixture);
        const auth = await walletAuthorization(wallet, bob.address);
        const signature = await signAuthorization(stablecoin, bob, "TransferWithAuthorization", auth);

        await expect(transferBytes(stablecoin, auth, signature)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });

      it("reverts with MockStablecoinInvalidSignature when the wallet rejects all signatures", async function () {
        const { stablecoin, wallet, alice, bob } = await loadFixture(deployFixture);
        const auth = await walletAuthorization(wallet, bob.address);
        const signature = await signAuthorization(stablecoin, alice, "TransferWithAuthorization", auth);
        await wallet.connect(alice).setRejectAll(true);

        await expect(transferBytes(stablecoin, auth, signature)).to.be.revertedWithCustomError(
          stablecoin,
          "MockStablecoinInvalidSignature",
        );
      });
    });
  });

  describe("MockFeeOnTransferToken", function () {
    describe("transfer", function () {
      it("delivers value minus the 1% fee and burns the fee", async function () {
        const { feeToken, alice, bob } = await loadFixture(deployFixture);
        await feeToken.mint(alice.address, USDC(1_000));
        const value = USDC(100);
        const fee = USDC(1);

        const tx = feeToken.connect(alice).transfer(bob.address, value);
        await expect(tx).to.changeTokenBalances(feeToken, [alice, bob], [-value, value - fee]);
        await expect(tx)
          .to.emit(feeToken, "Transfer")
          .withArgs(alice.address, bob.address, value - fee);
        await expect(tx).to.emit(feeToken, "Transfer").withArgs(alice.address, ethers.ZeroAddress, fee);
        expect(await feeToken.totalSupply()).to.equal(USDC(1_000) - fee);
      });

      it("also charges the fee on transferFrom", async function () {
        const { feeToken, alice, bob, carol } = await loadFixture(deployFixture);
        await feeToken.mint(alice.address, USDC(10));
        await feeToken.connect(alice).approve(carol.address, USDC(10));

        await expect(feeToken.connect(carol).transferFrom(alice.address, bob.address, USDC(10))).to.changeTokenBalances(
          feeToken,
          [alice, bob],
          [-USDC(10), USDC(9.9)],
        );
      });

      it("does not tax mints", async function () {
        const { feeToken, alice } = await loadFixture(deployFixture);
        await feeToken.mint(alice.address, USDC(100));
        expect(await feeToken.balanceOf(alice.address)).to.equal(USDC(100));
        expect(await feeToken.decimals()).to.equal(6);
        expect(await feeToken.feeBps()).to.equal(100n);
      });
    });

    describe("constructor", function () {
      it("reverts with MockFeeOnTransferTokenInvalidFee above 100%", async function () {
        const factory = await ethers.getContractFactory("MockFeeOnTransferToken");
        await expect(factory.deploy(10_001))
          .to.be.revertedWithCustomError(factory, "MockFeeOnTransferTokenInvalidFee")
          .withArgs(10_001);
      });
    });
  });

  describe("MockBlacklistToken", function () {
    describe("setBlacklisted", function () {
      it("emits BlacklistUpdated and updates isBlacklisted", async function () {
        const { blacklistToken, bob, carol } = await loadFixture(deployFixture);
        await expect(blacklistToken.connect(carol).setBlacklisted(bob.address, true))
          .to.emit(blacklistToken, "BlacklistUpdated")
          .withArgs(bob.address, true);
        expect(await blacklistToken.isBlacklisted(bob.address)).to.equal(true);
        await blacklistToken.setBlacklisted(bob.address, false);
        expect(await blacklistToken.isBlacklisted(bob.address)).to.equal(false);
      });
    });

    describe("transfer", function () {
      it("reverts with MockBlacklistTokenBlacklisted when the sender is blacklisted", async function () {
        const { blacklistToken, alice, bob } = await loadFixture(deployFixture);
        await blacklistToken.mint(alice.address, USDC(10));
        await blacklistToken.setBlacklisted(alice.address, true);

        await expect(blacklistToken.connect(alice).transfer(bob.address, USDC(1)))
          .to.be.revertedWithCustomError(blacklistToken, "MockBlacklistTokenBlacklisted")
          .withArgs(alice.address);
      });

      it("reverts with MockBlacklistTokenBlacklisted when the recipient is blacklisted", async function () {
        const { blacklistToken, alice, bob } = await loadFixture(deployFixture);
        await blacklistToken.mint(alice.address, USDC(10));
        await blacklistToken.setBlacklisted(bob.address, true);

        await expect(blacklistToken.connect(alice).transfer(bob.address, USDC(1)))
          .to.be.revertedWithCustomError(blacklistToken, "MockBlacklistTokenBlacklisted")
          .withArgs(bob.address);
      });

      it("transfers normally once unblacklisted", async function () {
        const { blacklistToken, alice, bob } = await loadFixture(deployFixture);
        await blacklistToken.mint(alice.address, USDC(10));
        await blacklistToken.setBlacklisted(bob.address, true);
        await blacklistToken.setBlacklisted(bob.address, false);

        await expect(blacklistToken.connect(alice).transfer(bob.address, USDC(4))).to.changeTokenBalances(
          blacklistToken,
          [alice, bob],
          [-USDC(4), USDC(4)],
        );
        expect(await blacklistToken.decimals()).to.equal(6);
      });
    });
  });

  describe("MockReentrantToken", function () {
    describe("setReentry / clearReentry", function () {
      it("arms and disarms the hook with events", async function () {
        const { reentrantToken, revertingReceiver } = await loadFixture(deployFixture);
        const target = await revertingReceiver.getAddress();
        await expect(reentrantToken.setReentry(target, "0x1234"))
          .to.emit(reentrantToken, "ReentryArmed")
          .withArgs(target, "0x1234");
        expect(await reentrantToken.reentryTarget()).to.equal(target);
        expect(await reentrantToken.reentryData()).to.equal("0x1234");

        await expect(reentrantToken.clearReentry()).to.emit(reentrantToken, "ReentryCleared");
        expect(await reentrantToken.reentryTarget()).to.equal(ethers.ZeroAddress);
        expect(await reentrantToken.reentryData()).to.equal("0x");
      });

      it("reverts with MockReentrantTokenZeroTarget for the zero address", async function () {
        const { reentrantToken } = await loadFixture(deployFixture);
        await expect(reentrantToken.setReentry(ethers.ZeroAddress, "0x")).to.be.revertedWithCustomError(
          reentrantToken,
          "MockReentrantTokenZeroTarget",
        );
      });
    });

    describe("transfer", function () {
      it("calls the target, records the refusal and does not revert the outer transfer", async function () {
        const { reentrantToken, wallet, alice, bob } = await loadFixture(deployFixture);
        await reentrantToken.mint(alice.address, USDC(10));
        // The wallet refuses `execute` from anyone but its owner: a stand-in for a guarded entry point.
        const data = wallet.interface.encodeFunctionData("execute", [bob.address, 0n, "0x"]);
        await reentrantToken.setReentry(await wallet.getAddress(), data);
        const tokenAddress = await reentrantToken.getAddress();
        const expectedRevert = wallet.interface.encodeErrorResult("MockERC1271WalletNotOwner", [tokenAddress]);

        const tx = reentrantToken.connect(alice).transfer(bob.address, USDC(3));
        await expect(tx).to.changeTokenBalances(reentrantToken, [alice, bob], [-USDC(3), USDC(3)]);
        await expect(tx)
          .to.emit(reentrantToken, "ReentryAttempted")
          .withArgs(await wallet.getAddress(), false, expectedRevert);
        expect(await reentrantToken.lastReentrySuccess()).to.equal(false);
        expect(await reentrantToken.lastReentryReturnData()).to.equal(expectedRevert);
        expect(await reentrantToken.reentryTarget()).to.equal(ethers.ZeroAddress);
      });

      it("records a successful reentry and fires only once", async function () {
        const { reentrantToken, alice, bob, carol } = await loadFixture(deployFixture);
        await reentrantToken.mint(alice.address, USDC(10));
        const tokenAddress = await reentrantToken.getAddress();
        // Re-enter the token itself: mint goes through _update again, but the hook is already disarmed.
        const data = reentrantToken.interface.encodeFunctionData("mint", [carol.address, USDC(5)]);
        await reentrantToken.setReentry(tokenAddress, data);

        const tx = reentrantToken.connect(alice).transfer(bob.address, USDC(1));
        await expect(tx).to.emit(reentrantToken, "ReentryAttempted").withArgs(tokenAddress, true, "0x");
        expect(await reentrantToken.balanceOf(carol.address)).to.equal(USDC(5));
        expect(await reentrantToken.lastReentrySuccess()).to.equal(true);

        await expect(reentrantToken.connect(alice).transfer(bob.address, USDC(1))).not.to.emit(
          reentrantToken,
          "ReentryAttempted",
        );
        expect(await reentrantToken.balanceOf(carol.address)).to.equal(USDC(5));
      });
    });
  });

  describe("MockERC1271Wallet", function () {
    describe("isValidSignature", function () {
      it("returns the magic value for a signature of the owner", async function () {
        const { wallet, alice } = await loadFixture(deployFixture);
        const hash = ethers.hashMessage("hello");
        const signature = await alice.signMessage("hello");
        expect(await wallet.isValidSignature(hash, signature)).to.equal(MAGIC_VALUE);
      });

      it("returns 0xffffffff for a signature of someone else", async function () {
        const { wallet, bob } = await loadFixture(deployFixture);
        const hash = ethers.hashMessage("hello");
        const signature = await bob.signMessage("hello");
        expect(await wallet.isValidSignature(hash, signature)).to.equal(INVALID_VALUE);
      });

      it("returns 0xffffffff for a malformed or malleable signature", async function () {
        const { wallet, alice } = await loadFixture(deployFixture);
        const hash = ethers.hashMessage("hello");
        const signature = await alice.signMessage("hello");
        expect(await wallet.isValidSignature(hash, "0x1234")).to.equal(INVALID_VALUE);
        expect(await wallet.isValidSignature(hash, malleate(signature))).to.equal(INVALID_VALUE);
      });

      it("returns 0xffffffff for everything while rejectAll is set", async function () {
        const { wallet, alice } = await loadFixture(deployFixture);
        const hash = ethers.hashMessage("hello");
        const signature = await alice.signMessage("hello");
        await expect(wallet.connect(alice).setRejectAll(true)).to.emit(wallet, "RejectAllSet").withArgs(true);
        expect(await wallet.isValidSignature(hash, signature)).to.equal(INVALID_VALUE);
        await wallet.connect(alice).setRejectAll(false);
        expect(await wallet.isValidSignature(hash, signature)).to.equal(MAGIC_VALUE);
      });
    });

    describe("setRejectAll", function () {
      it("reverts with MockERC1271WalletNotOwner for a non-owner", async function () {
        const { wallet, bob } = await loadFixture(deployFixture);
        await expect(wallet.connect(bob).setRejectAll(true))
          .to.be.revertedWithCustomError(wallet, "MockERC1271WalletNotOwner")
          .withArgs(bob.address);
      });
    });

    describe("execute", function () {
      it("performs the call for the owner and emits Executed", async function () {
        const { wallet, stablecoin, alice, bob } = await loadFixture(deployFixture);
        const data = stablecoin.interface.encodeFunctionData("transfer", [bob.address, USDC(50)]);
        const tokenAddress = await stablecoin.getAddress();

        const tx = wallet.connect(alice).execute(tokenAddress, 0n, data);
        await expect(tx).to.emit(wallet, "Executed").withArgs(tokenAddress, 0n, data);
        await expect(tx).to.changeTokenBalances(stablecoin, [wallet, bob], [-USDC(50), USDC(50)]);
      });

      it("forwards ETH held by the wallet", async function () {
        const { wallet, alice, bob } = await loadFixture(deployFixture);
        await alice.sendTransaction({ to: await wallet.getAddress(), value: ethers.parseEther("1") });

        await expect(wallet.connect(alice).execute(bob.address, ethers.parseEther("0.4"), "0x")).to.changeEtherBalances(
          [wallet, bob],
          [-ethers.parseEther("0.4"), ethers.parseEther("0.4")],
        );
      });

      it("bubbles up the original revert data", async function () {
        const { wallet, stablecoin, alice, bob } = await loadFixture(deployFixture);
        const data = stablecoin.interface.encodeFunctionData("transfer", [bob.address, USDC(1_000_000)]);

        await expect(wallet.connect(alice).execute(await stablecoin.getAddress(), 0n, data))
          .to.be.revertedWithCustomError(stablecoin, "ERC20InsufficientBalance")
          .withArgs(await wallet.getAddress(), USDC(1_000), USDC(1_000_000));
      });

      it("reverts with MockERC1271WalletNotOwner for a non-owner", async function () {
        const { wallet, bob } = await loadFixture(deployFixture);
        await expect(wallet.connect(bob).execute(bob.address, 0n, "0x"))
          .to.be.revertedWithCustomError(wallet, "MockERC1271WalletNotOwner")
          .withArgs(bob.address);
      });
    });

    describe("onERC721Received", function () {
      it("returns its selector", async function () {
        const { wallet, bob } = await loadFixture(deployFixture);
        const selector = wallet.interface.getFunction("onERC721Received").selector;
        expect(await wallet.onERC721Received(bob.address, bob.address, 1n, "0x")).to.equal(selector);
      });
    });
  });

  describe("MockOKB", function () {
    describe("mint", function () {
      it("is an 18-decimal OKB token that anyone can mint", async function () {
        const { okb, bob, carol } = await loadFixture(deployFixture);
        expect(await okb.name()).to.equal("Mock OKB");
        expect(await okb.symbol()).to.equal("OKB");
        expect(await okb.decimals()).to.equal(18);
        await expect(okb.connect(bob).mint(carol.address, ethers.parseEther("2")))
          .to.emit(okb, "Transfer")
          .withArgs(ethers.ZeroAddress, carol.address, ethers.parseEther("2"));
        expect(await okb.balanceOf(carol.address)).to.equal(ethers.parseEther("2"));
      });
    });
  });

  describe("MockRevertingReceiver", function () {
    describe("receive / fallback", function () {
      it("reverts with MockRevertingReceiverRejected on plain ETH", async function () {
        const { revertingReceiver, alice } = await loadFixture(deployFixture);
        const value = ethers.parseEther("1");
        await expect(alice.sendTransaction({ to: await revertingReceiver.getAddress(), value }))
          .to.be.revertedWithCustomError(revertingReceiver, "MockRevertingReceiverRejected")
          .withArgs(alice.address, value);
      });

      it("reverts with MockRevertingReceiverRejected on unknown calldata", async function () {
        const { revertingReceiver, alice } = await loadFixture(deployFixture);
        await expect(alice.sendTransaction({ to: await revertingReceiver.getAddress(), data: "0xdeadbeef" }))
          .to.be.revertedWithCustomError(revertingReceiver, "MockRevertingReceiverRejected")
          .withArgs(alice.address, 0n);
      });

      it("makes a contract payout fail (via MockERC1271Wallet.execute)", async function () {
        const { revertingReceiver, wallet, alice } = await loadFixture(deployFixture);
        await alice.sendTransaction({ to: await wallet.getAddress(), value: ethers.parseEther("1") });

        await expect(wallet.connect(alice).execute(await revertingReceiver.getAddress(), 1n, "0x"))
          .to.be.revertedWithCustomError(revertingReceiver, "MockRevertingReceiverRejected")
          .withArgs(await wallet.getAddress(), 1n);
      });
    });

    describe("onERC721Received", function () {
      it("reverts with MockRevertingReceiverERC721Rejected", async function () {
        const { revertingReceiver, alice } = await loadFixture(deployFixture);
        await expect(revertingReceiver.connect(alice).onERC721Received(alice.address, alice.address, 7n, "0x"))
          .to.be.revertedWithCustomError(revertingReceiver, "MockRevertingReceiverERC721Rejected")
          .withArgs(alice.address, 7n);
      });
    });
  });
});
