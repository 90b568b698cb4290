// Test harness: a real `braid dev` (BRAID_BIN), example-worker child processes, ledgers, and
// bounded waits on readiness (stdout lines, ledger lines, run events), never fixed sleeps.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import * as net from "node:net";
import assert from "node:assert/strict";

/** How long a process may take to announce itself. */
export const START_TIMEOUT_MS = 30_000;

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** The `braid` binary under test; fails (never skips) when BRAID_BIN is not set. */
export function braidBin(): string {
  const bin = process.env.BRAID_BIN;
  if (!bin || !fs.existsSync(bin)) {
    throw new Error(
      "BRAID_BIN must name the built `braid` binary; run the tests via clients/typescript/test.sh " +
        "(BRAID_BIN=$HOME/.cache/braid/target/debug/braid) or scripts/test",
    );
  }
  return bin;
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tempDir(prefix = "braid-ts-"): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const verbose = process.env.BRAID_TEST_VERBOSE === "1";

/** A child process whose stdout lines are collected and can be waited on. */
export class Proc {
  readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly what: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    children.add(child);
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        children.delete(child);
        this.wake();
        resolve({ code, signal });
      });
    });
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      this.lines.push(line);
      if (verbose) process.stderr.write(`[${what} stdout] ${line}\n`);
      this.wake();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for a stdout line matching `pred`; returns it. */
  async waitForLine(pred: (line: string) => boolean, timeoutMs = START_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found !== undefined) return found;
      if (!this.running) throw new Error(`${this.what} exited before printing the expected line\n${this.logTail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.what}: timed out after ${timeoutMs} ms waiting for a line\n${this.logTail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /** Waits for the process to exit within `timeoutMs` (then SIGKILLs it and throws). */
  async wait(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`${this.what} did not exit within ${timeoutMs} ms\n${this.logTail()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGCONT");
    this.child.kill("SIGTERM");
    try {
      await this.wait(timeoutMs);
    } catch {
      // killed
    }
  }

  /** The last lines of the process's stderr log. */
  logTail(lines = 40): string {
    try {
      const text = fs.readFileSync(this.logFile, "utf8").trimEnd().split("\n");
      return `--- last lines of ${this.logFile} ---\n${text.slice(-lines).join("\n")}`;
    } catch {
      return "";
    }
  }
}

function spawnLogged(what: string, cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Proc {
  const log = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", verbose ? "inherit" : log], env: env ?? process.env });
  fs.closeSync(log);
  return new Proc(what, child, logFile);
}

/** The PEM files `makeTlsFiles` writes (paths). */
export interface TlsFiles {
  /** The test CA, and a CA nobody trusts. */
  ca: string;
  otherCa: string;
  /** The server's certificate (SAN IP 127.0.0.1, DNS localhost) and key, signed by `ca`. */
  serverCert: string;
  serverKey: string;
  /** A client certificate (clientAuth) and key signed by `ca`. */
  clientCert: string;
  clientKey: string;
  /** A client certificate and key signed by `otherCa`. */
  otherClientCert: string;
  otherClientKey: string;
}

/**
 * Writes a CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a
 * client certificate from a second CA into `dir`, with the `openssl` command (P-256 keys in
 * PKCS#8, valid for two days).
 */
export function makeTlsFiles(dir: string): TlsFiles {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => {
    try {
      execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
      throw new Error(`openssl ${args.join(" ")} failed: ${(error as Error).message}\n${stderr}`);
    }
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = (name: string) =>
    openssl("req", "-x509", ...newKey, "-days", "2", "-keyout", f(`${name}.key`), "-out", f(`${name}.pem`), "-subj", `/CN=braid test ${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  let serial = 1;
  const leaf = (name: string, caName: string, ext: string) => {
    fs.writeFileSync(f(`${name}.ext`), `basicConstraints=critical,CA:FALSE\n${ext}\n`);
    openssl("req", ...newKey, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${name}`);
    openssl("x509", "-req", "-in", f(`${name}.csr`), "-CA", f(`${caName}.pem`), "-CAkey", f(`${caName}.key`),
      "-set_serial", String(serial++), "-days", "2", "-extfile", f(`${name}.ext`), "-out", f(`${name}.pem`));
  };
  ca("ca");
  ca("other-ca");
  leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
  leaf("client", "ca", "extendedKeyUsage=clientAuth");
  leaf("other-client", "other-ca", "extendedKeyUsage=clientAuth");
  return {
    ca: f("ca.pem"),
    otherCa: f("other-ca.pem"),
    serverCert: f("server.pem"),
    serverKey: f("server.key"),
    clientCert: f("client.pem"),
    clientKey: f("client.key"),
    otherClientCert: f("other-client.pem"),
    otherClientKey: f("other-client.key"),
  };
}

/** A running `braid dev` on free ports. */
export class Dev {
  private constructor(
    public proc: Proc,
    /** host:port of the gRPC API. */
    readonly address: string,
    readonly dir: string,
    private readonly args: string[],
    private readonly cleanupDir: () => void,
    /** The admin token it printed (`Token brd_…`), when started with `auth: true`. */
    readonly token?: string,
    /** Whether its gRPC port serves TLS (started with `tls`). */
    readonly tls = false,
  ) {}

  /** `http://host:port` (`https://` with TLS), for the braid CLI. */
  get endpoint(): string {
    return `${this.tls ? "https" : "http"}://${this.address}`;
  }

  /**
   * Starts `braid dev --no-demo --lease-ttl LEASE_TTL` in a fresh data dir and waits for its gRPC
   * address. `grpcPort` 0 (the default) picks a free port. It runs `--insecure` unless `auth`
   * is true; then `token` is the admin token it printed. With `tls` its gRPC port serves TLS
   * (`--tls-cert`, `--tls-key`) and, with `tls.clientCa`, requires client certificates (mTLS).
   */
  static async start(
    options: { leaseTtl?: string; grpcPort?: number; auth?: boolean; tls?: { cert: string; key: string; clientCa?: string } } = {},
  ): Promise<Dev> {
    const bin = braidBin();
    const { dir, cleanup } = tempDir("braid-ts-dev-");
    const args = [
      "dev",
      "--data-dir",
      path.join(dir, "data"),
      "--grpc-port",
      String(options.grpcPort ?? 0),
      "--http-port",
      "0",
      "--no-demo",
      ...(options.auth ? [] : ["--insecure"]),
      "--lease-ttl",
      options.leaseTtl ?? "1s",
      "--reaper-interval",
      "200ms",
      ...(options.tls ? ["--tls-cert", options.tls.cert, "--tls-key", options.tls.key] : []),
      ...(options.tls?.clientCa ? ["--tls-client-ca", options.tls.clientCa] : []),
    ];
    const proc = spawnLogged("braid dev", bin, args, path.join(dir, "braid.log"));
    const line = await proc.waitForLine((l) => l.startsWith("gRPC  "));
    let token: string | undefined;
    if (options.auth) {
      const tokenLine = await proc.waitForLine((l) => /^Token\s+brd_\S+\s*$/.test(l));
      token = tokenLine.slice("Token".length).trim();
    }
    if (options.tls) await proc.waitForLine((l) => l.startsWith("TLS   on the gRPC port"));
    return new Dev(proc, line.slice("gRPC  ".length).trim(), dir, args, cleanup, token, options.tls !== undefined);
  }

  /** Stops the server (SIGTERM) and starts it again on the same data dir and port. */
  async restart(): Promise<void> {
    await this.proc.stop(20_000);
    const proc = spawnLogged("braid dev", braidBin(), this.args, path.join(this.dir, "braid.log"));
    const line = await proc.waitForLine((l) => l.startsWith("gRPC  "));
    assert.equal(line.slice("gRPC  ".length).trim(), this.address, "restarted on the same address");
    this.proc = proc;
  }

  /** A path in this server's temp dir. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Runs the braid CLI against this server; resolves with its exit code and output. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(braidBin(), [...args, "--endpoint", this.endpoint], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Starts `dist/examples/example-worker.js` and waits for `worker NAME connected`. */
  async exampleWorker(
    name: string,
    slots: number,
    types: string,
    extra: string[] = [],
    env?: NodeJS.ProcessEnv,
  ): Promise<ExampleWorker> {
    const script = path.resolve(__dirname, "..", "examples", "example-worker.js");
    const ledger = this.file(`${name}.jsonl`);
    const args = [script, "--endpoint", this.tls ? this.endpoint : this.address, "--name", name, "--slots", String(slots), "--types", types];
    const log = this.file(`${name}.log`);
    const proc = spawnLogged(`worker ${name}`, process.execPath, [...args, "--ledger", ledger, ...extra], log, env);
    await proc.waitForLine((l) => l.trim() === `worker ${name} connected`);
    return new ExampleWorker(proc, name, ledger);
  }

  /** Stops the server (SIGTERM) and removes its data dir. */
  async stop(): Promise<void> {
    await this.proc.stop(20_000);
    this.cleanupDir();
  }
}

export type LedgerLine = {
  event: "start" | "finish" | "ack";
  task_id: string;
  attempt: number;
  lease_id: string;
  task_type: string;
  worker: string;
  worker_id: string;
  outcome: string | null;
  code: number | null;
  error_type: string | null;
  [k: string]: unknown;
};

/** A running example-worker child process with its ledger. */
export class ExampleWorker {
  constructor(
    readonly proc: Proc,
    readonly name: string,
    readonly ledger: string,
  ) {}

  lines(): LedgerLine[] {
    return ledgerLines(this.ledger);
  }

  /** Waits until some ledger line satisfies `pred`; returns it. */
  async waitForLedger(what: string, pred: (l: LedgerLine) => boolean, timeoutMs = 20_000): Promise<LedgerLine> {
    return waitFor(
      `${what} in ${this.ledger}`,
      () => this.lines().find(pred),
      timeoutMs,
      () => this.proc.logTail(),
    );
  }
}

/** Lines of a ledger file (JSON objects), in order. */
export function ledgerLines(file: string): LedgerLine[] {
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: LedgerLine[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as LedgerLine);
    } catch {
      // a line being written
    }
  }
  return out;
}

/**
 * Polls `probe` (every 20 ms) until it returns something other than undefined/false; throws
 * after `timeoutMs` with `what` and the optional diagnostics.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  diagnostics?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${diagnostics ? `\n${diagnostics()}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise with its resolve function, for "the handler got here" signals. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Races `promise` against a timeout. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
