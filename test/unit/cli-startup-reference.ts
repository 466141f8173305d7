// The reference run of cli-startup.test.ts: Bun's start, the CLI's and the gateway's modules, and a
// gateway started and closed at once. That is the work of a failed start but for its failing step.
import "../../src/cli/main.ts";
import { startGateway } from "../../src/index.ts";
import { parseKey } from "../../src/wireguard/keys.ts";
import { quietGateway } from "./quiet-gateway.ts";

const [privateKey, peerPublicKey] = process.argv.slice(2);
if (!privateKey || !peerPublicKey) throw new Error("usage: cli-startup-reference.ts PRIVATE_KEY PEER_PUBLIC_KEY");
const gateway = await startGateway({
  mode: "wireguard",
  privateKey: parseKey(privateKey),
  peerPublicKey: parseKey(peerPublicKey),
  ...quietGateway(0),
});
await gateway.close();
