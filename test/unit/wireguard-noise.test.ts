import { describe, expect, test } from "bun:test";
import { SeededRandom } from "../../src/util/random.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { parseInitiation, parseResponse } from "../../src/wireguard/messages.ts";
import { NoiseHandshake } from "../../src/wireguard/noise.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function parties(psk?: Uint8Array) {
  const r = new SeededRandom(11);
  const iPriv = generatePrivateKey(r);
  const rPriv = generatePrivateKey(r);
  return {
    r,
    initiator: new NoiseHandshake(iPriv, publicKeyOf(rPriv), psk),
    responder: new NoiseHandshake(rPriv, publicKeyOf(iPriv), psk),
  };
}

function initiation(h: NoiseHandshake, r: SeededRandom, sender: number, wallMs: number) {
  const bytes = h.createInitiation(sender, generatePrivateKey(r), wallMs)!;
  const msg = parseInitiation(bytes);
  if (typeof msg === "string") throw new Error(msg);
  return msg;
}

describe("Noise_IKpsk2 handshake", () => {
  test("both roles derive crossed transport keys and indices", () => {
    const { r, initiator, responder } = parties(new Uint8Array(32).fill(1));
    const init = initiation(initiator, r, 111, 1_700_000_000_000);
    expect(initiator.state).toBe("initiationCreated");
    expect(responder.consumeInitiation(init, 0)).toBeNull();
    const respBytes = responder.createResponse(222, generatePrivateKey(r))!;
    const resp = parseResponse(respBytes);
    if (typeof resp === "string") throw new Error(resp);
    expect(resp.receiver).toBe(111);
    expect(initiator.consumeResponse(resp)).toBeNull();
    const ki = initiator.deriveKeys()!;
    const kr = responder.deriveKeys()!;
    expect(hex(ki.sendKey)).toBe(hex(kr.receiveKey));
    expect(hex(ki.receiveKey)).toBe(hex(kr.sendKey));
    expect(hex(ki.sendKey)).not.toBe(hex(ki.receiveKey));
    expect([ki.isInitiator, ki.localIndex, ki.remoteIndex]).toEqual([true, 111, 222]);
    expect([kr.isInitiator, kr.localIndex, kr.remoteIndex]).toEqual([false, 222, 111]);
    expect(initiator.state).toBe("zeroed");
    expect(initiator.deriveKeys()).toBeUndefined();
  });

  test("deterministic: same seed, same bytes", () => {
    const a = parties();
    const b = parties();
    const ia = a.initiator.createInitiation(1, generatePrivateKey(a.r), 5000)!;
    const ib = b.initiator.createInitiation(1, generatePrivateKey(b.r), 5000)!;
    expect(hex(ia)).toBe(hex(ib));
  });

  test("timestamp must be newer; initiations are rate limited to one per 20 ms", () => {
    const { r, initiator, responder } = parties();
    expect(responder.consumeInitiation(initiation(initiator, r, 1, 10_000), 0)).toBeNull();
    expect(responder.consumeInitiation(initiation(initiator, r, 2, 10_000), 1000)).toBe("handshakeReplay");
    expect(responder.consumeInitiation(initiation(initiator, r, 3, 9_000), 1000)).toBe("handshakeReplay");
    expect(responder.consumeInitiation(initiation(initiator, r, 4, 11_000), 10)).toBe("handshakeFlood");
    expect(responder.consumeInitiation(initiation(initiator, r, 5, 11_000), 21)).toBeNull();
  });

  test("a tampered initiation or response leaves the state unchanged", () => {
    const { r, initiator, responder } = parties();
    const init = initiation(initiator, r, 7, 20_000);
    const badStatic = { ...init, encryptedStatic: init.encryptedStatic.slice() };
    badStatic.encryptedStatic[0]! ^= 1;
    expect(responder.consumeInitiation(badStatic, 0)).toBe("handshakeDecrypt");
    const badTs = { ...init, encryptedTimestamp: init.encryptedTimestamp.slice() };
    badTs.encryptedTimestamp[27]! ^= 1;
    expect(responder.consumeInitiation(badTs, 0)).toBe("handshakeDecrypt");
    expect(responder.state).toBe("zeroed");
    expect(responder.consumeInitiation(init, 0)).toBeNull();
    const resp = parseResponse(responder.createResponse(8, generatePrivateKey(r))!);
    if (typeof resp === "string") throw new Error(resp);
    const wrongIdx = { ...resp, receiver: 999 };
    expect(initiator.consumeResponse(wrongIdx)).toBe("unknownIndex");
    const badEmpty = { ...resp, encryptedNothing: resp.encryptedNothing.slice() };
    badEmpty.encryptedNothing[0]! ^= 1;
    expect(initiator.consumeResponse(badEmpty)).toBe("handshakeDecrypt");
    expect(initiator.state).toBe("initiationCreated");
    expect(initiator.consumeResponse(resp)).toBeNull();
    expect(initiator.consumeResponse(resp)).toBe("badState");
  });

  test("low-order ephemeral is rejected; invalid static keys are refused at construction", () => {
    const { r, initiator, responder } = parties();
    const init = initiation(initiator, r, 1, 30_000);
    expect(responder.consumeInitiation({ ...init, ephemeral: new Uint8Array(32) }, 0)).toBe("handshakeDecrypt");
    expect(() => new NoiseHandshake(generatePrivateKey(r), new Uint8Array(32), undefined)).toThrow(RangeError);
    expect(() => new NoiseHandshake(new Uint8Array(31), new Uint8Array(32), undefined)).toThrow(RangeError);
  });
});
