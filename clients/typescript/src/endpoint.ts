// Endpoints: "127.0.0.1:7400", "http://127.0.0.1:7400" or "https://braid.example:443".

import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";

/** The endpoint used when none is given and BRAID_ENDPOINT is unset. */
export const DEFAULT_ENDPOINT = "127.0.0.1:7400";

export interface Target {
  /** host:port for grpc-js. */
  address: string;
  credentials: ChannelCredentials;
}

/**
 * Resolves an endpoint: `host:port` and `http://host:port` are plaintext, `https://host:port`
 * is TLS with the system roots; explicit credentials win. Without an endpoint, BRAID_ENDPOINT
 * or 127.0.0.1:7400.
 */
export function resolveEndpoint(endpoint: string | undefined, credentials?: ChannelCredentials): Target {
  let text = (endpoint ?? process.env.BRAID_ENDPOINT ?? DEFAULT_ENDPOINT).trim();
  let tls = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    if (name === "https") tls = true;
    else if (name !== "http") throw new TypeError(`unsupported endpoint scheme in ${JSON.stringify(text)}: use host:port, http:// or https://`);
    text = text.slice(scheme[0].length);
  }
  text = text.replace(/\/+$/, "");
  if (text === "" || text.includes("/")) {
    throw new TypeError(`invalid endpoint ${JSON.stringify(endpoint)}: expected host:port, e.g. 127.0.0.1:7400`);
  }
  const address = /:\d+$/.test(text) || text.startsWith("unix:") ? text : `${text}:${tls ? 443 : 80}`;
  return {
    address,
    credentials: credentials ?? (tls ? grpcCredentials.createSsl() : grpcCredentials.createInsecure()),
  };
}
