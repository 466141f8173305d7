/**
 * Serve a running gateway's WireGuard device on the UAPI socket. `listen_port` rebinds the outer
 * UDP socket through the gateway's callback. When the socket path is taken by another live
 * process: an error if the path was asked for, else a warning and no UAPI (two gateways with the
 * default name on one host must both run).
 */
import type { Logger } from "../util/log.ts";
import type { WireGuardDevice } from "../wireguard/device.ts";
import { startUapiServer, UapiInUseError, type UapiServer } from "./server.ts";

export interface UapiOptions {
  /** Socket path, e.g. /var/run/wireguard/wgslirpy.sock. */
  path: string;
  /** The path was chosen explicitly (--uapi / --name): failing to serve it is a startup error. */
  required?: boolean;
}

export async function attachUapi(
  opts: UapiOptions,
  device: WireGuardDevice,
  log: Logger,
  setListenPort: (port: number) => Promise<void>,
): Promise<UapiServer | undefined> {
  try {
    const server = await startUapiServer(opts.path, {
      device,
      listenPort: () => device.localEndpoint.port,
      setListenPort,
      log: (m) => log.warn(m),
    });
    log.info(`UAPI on ${opts.path} (wg show / wg set work with it)`);
    return server;
  } catch (e) {
    if (opts.required) throw e;
    const why = e instanceof UapiInUseError ? "in use by another process" : (e as Error).message;
    log.warn(`no UAPI socket: ${opts.path} ${why}`);
    return undefined;
  }
}
