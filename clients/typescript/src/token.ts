// API tokens: sent as `authorization: Bearer TOKEN` metadata on every braid.v1 call.

import { Metadata } from "@grpc/grpc-js";

/**
 * The API token to send: `token`, or BRAID_TOKEN when it is undefined; empty means none
 * (undefined is returned). Surrounding whitespace is dropped (a token read from a file keeps its
 * newline); whitespace, control or non-ASCII characters inside throw a TypeError naming the
 * problem (a token is `brd_` and 43 URL-safe base64 characters).
 */
export function resolveToken(token?: string): string | undefined {
  let source = "token";
  if (token === undefined) {
    token = process.env.BRAID_TOKEN ?? "";
    source = "BRAID_TOKEN";
  }
  if (typeof token !== "string") throw new TypeError(`invalid ${source}: expected a string (got ${typeof token})`);
  const text = token.trim();
  if (text === "") return undefined;
  const bad = /[^\x21-\x7e]/.exec(text);
  if (bad) {
    const c = bad[0];
    const what = /\s/.test(c) ? "whitespace" : c < "\x80" ? "a control character" : "a non-ASCII character";
    const hint = /^bearer\s/i.test(text) ? " (pass the token alone, without 'Bearer ')" : "";
    throw new TypeError(
      `invalid ${source}: it contains ${what} (${JSON.stringify(c)}); a token is \`brd_\` and 43 URL-safe base64 characters${hint}`,
    );
  }
  return text;
}

/** Fresh call metadata carrying `authorization: Bearer TOKEN` (none for an undefined token). */
export function authMetadata(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}
