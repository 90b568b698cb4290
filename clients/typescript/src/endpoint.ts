// Endpoints: "127.0.0.1:7400", "http://127.0.0.1:7400" or "https://braid.example:443".

import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";
import { tlsCredentials, tlsOptionsGiven, type TlsOptions } from "./tls";

/** The endpoint used when none is given and BRAID_ENDPOINT is unset. */
export const DEFAULT_ENDPOINT = "127.0.0.1:7400";

export interface Target {
  /** host:port for grpc-js. */
  address: string;
  credentials: ChannelCredentials;
}

/**
 * Resolves an endpoint: `host:port` and `http://host:port` are plaintext, `https://host:port`
 * is TLS with the system roots or `tls.caCert`, and a client certificate with
 * `tls.clientCert`/`clientKey` (mTLS); explicit credentials win (and exclude the TLS options).
 * Without an endpoint, BRAID_ENDPOINT or 127.0.0.1:7400. TLS options with a plaintext endpoint
 * throw a TypeError naming them (rather than connecting in plaintext).
 */
export function resolveEndpoint(endpoint: string | undefined, credentials?: ChannelCredentials, tls: TlsOptions = {}): Target {
  const shown = (endpoint ?? process.env.BRAID_ENDPOINT ?? DEFAULT_ENDPOINT).trim();
  let text = shown;
  let https = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    if (name === "https") https = true;
    else if (name !== "http") throw new TypeError(`unsupported endpoint scheme in ${JSON.stringify(text)}: use host:port, http:// or https://`);
    text = text.slice(scheme[0].length);
  }
  text = text.replace(/\/+$/, "");
  if (text === "" || text.includes("/")) {
    throw new TypeError(`invalid endpoint ${JSON.stringify(endpoint)}: expected host:port, e.g. 127.0.0.1:7400`);
  }
  const address = /:\d+$/.test(text) || text.startsWith("unix:") ? text : `${text}:${https ? 443 : 80}`;
  const given = tlsOptionsGiven(tls);
  if (given.length > 0 && credentials !== undefined) {
    throw new TypeError(`${given.join(", ")} and credentials are exclusive: pass the TLS options or your own credentials`);
  }
  if (given.length > 0 && !https) {
    throw new TypeError(`${given.join(", ")} set but the endpoint ${JSON.stringify(shown)} is not https://`);
  }
  return {
    address,
    credentials: credentials ?? (https ? tlsCredentials(tls) : grpcCredentials.createInsecure()),
  };
}
