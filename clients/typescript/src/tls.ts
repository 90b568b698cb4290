// TLS and mTLS for https:// endpoints: a CA to trust and an optional client certificate, each a
// PEM file's path or the PEM itself.

import * as fs from "node:fs";
import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";

/** A PEM file's path, or the PEM itself (a string holding `-----BEGIN`, or a Buffer). */
export type PemSource = string | Buffer | Uint8Array;

/** The TLS options of `BraidClient` and `Worker`; used only with an `https://` endpoint. */
export interface TlsOptions {
  /** The CA the server's certificate must chain to (default: the system roots). */
  caCert?: PemSource;
  /** A client certificate (chain) for a server that requires one (mTLS); with `clientKey`. */
  clientCert?: PemSource;
  /** The private key of `clientCert`. */
  clientKey?: PemSource;
}

const NAMES = ["caCert", "clientCert", "clientKey"] as const;

/** The TLS options that are set (not undefined, null or empty), by name. */
export function tlsOptionsGiven(tls: TlsOptions): string[] {
  return NAMES.filter((n) => {
    const v = tls[n];
    return v !== undefined && v !== null && !(typeof v === "string" && v === "") && !(v instanceof Uint8Array && v.length === 0);
  });
}

/**
 * The channel credentials of an `https://` endpoint with these options:
 * `credentials.createSsl(root, key, cert)`. Throws a TypeError naming the option for a
 * `clientCert` without `clientKey` (or the reverse), an unreadable file, a file without the
 * expected PEM block, or a key that does not match its certificate.
 */
export function tlsCredentials(tls: TlsOptions): ChannelCredentials {
  const given = tlsOptionsGiven(tls);
  const hasCert = given.includes("clientCert");
  const hasKey = given.includes("clientKey");
  if (hasCert !== hasKey) {
    throw new TypeError(`${hasCert ? "clientCert" : "clientKey"} is set without ${hasCert ? "clientKey" : "clientCert"}: they go together (mTLS)`);
  }
  const root = given.includes("caCert") ? readPem("caCert", tls.caCert!, "certificate") : null;
  const cert = hasCert ? readPem("clientCert", tls.clientCert!, "certificate") : null;
  const key = hasKey ? readPem("clientKey", tls.clientKey!, "private key") : null;
  try {
    return grpcCredentials.createSsl(root, key, cert);
  } catch (error) {
    const names = given.join(", ") || "TLS";
    throw new TypeError(`invalid ${names}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** The PEM of one option: a Buffer as is, a string holding `-----BEGIN` as is, else a file read. */
function readPem(option: string, source: PemSource, kind: "certificate" | "private key"): Buffer {
  let data: Buffer;
  let where: string;
  if (typeof source === "string" && !source.includes("-----BEGIN")) {
    where = `${option} ${source}`;
    try {
      data = fs.readFileSync(source);
    } catch (error) {
      const e = error as Error;
      throw new TypeError(`${where}: cannot read: ${e.message}`, { cause: error });
    }
  } else if (typeof source === "string") {
    where = `${option} (PEM text)`;
    data = Buffer.from(source, "utf8");
  } else if (source instanceof Uint8Array) {
    where = `${option} (Buffer)`;
    data = Buffer.from(source);
  } else {
    throw new TypeError(`invalid ${option}: expected a file path, PEM text or a Buffer (got ${typeof source})`);
  }
  const marker = kind === "certificate" ? "-----BEGIN CERTIFICATE-----" : "PRIVATE KEY-----";
  if (!data.includes(marker)) throw new TypeError(`${where}: holds no PEM ${kind}`);
  return data;
}
