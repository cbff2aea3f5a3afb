import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { compileSchema, firstError } from '../validate/schema.ts';
import { DEFAULTS, mergeConfig, SHIPPED_POLICY, type Resolved } from './defaults.ts';
import { fileSchema } from './schema.ts';

export type Mode = 'development' | 'production';
export type SigningAlg = 'ES256' | 'EdDSA';
export interface Bucket { burst: number; per_second: number }

export interface Config {
  mode: Mode;
  issuer: string;
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  adminToken: string | undefined;
  kek: string | undefined;
  trustProxy: boolean;
  logLevel: LogLevel;
  /** The deployment's declared environment (`production`, `staging`, ...), matched by policy `environment`. */
  environment: string | undefined;
  accessTokenTtl: number;
  signingAlg: SigningAlg;
  rotationOverlap: number;
  /** The shortest overlap a rotation may ask for: the time resource servers need to fetch the new key. */
  minRotationOverlap: number;
  bodyLimit: number;
  /** Request connections per process (PostgreSQL). */
  poolMax: number;
  /**
   * Token endpoint budgets: `token` per authenticated client (the primary control), `tokenPerAddress` per
   * client address (a guard before authentication, sized for many agents behind one egress address).
   */
  rateLimits: { token: Bucket; tokenPerAddress: Bucket; admin: Bucket };
  oidcSweepInterval: number;
  exchange: ExchangeSettings;
  /** Declared authorization_details types and their JSON Schemas. */
  detailTypes: Record<string, object>;
  /** Policy document loaded as version 1 when the database holds none. */
  policyFile: string;
  /** The built-in issuer of user tokens for trying intentgate out; never on in production. */
  devIssuer: boolean;
  ledger: LedgerSettings;
  server: ServerSettings;
}

export interface ServerSettings {
  /** Seconds a SIGTERM drain may take before the remaining connections are closed. */
  shutdownTimeout: number;
  /** Seconds an idle kept-alive connection stays open; longer than any load balancer's idle timeout in front. */
  keepAliveTimeout: number;
  /** Requests served at once (health endpoints aside); more wait for a slot, or are shed. */
  maxConcurrency: number;
  /** Longest a request waits for a slot before it is shed, ms; 0 sheds at once when every slot is busy. */
  maxQueueDelayMs: number;
}

export interface LedgerSettings {
  /** File holding the Ed25519 checkpoint signing key (never in the database). */
  keyFile: string | undefined;
  /** Where signed checkpoints and their leaf hashes are written, outside the database. */
  anchorDir: string;
  checkpointEvery: number;
  checkpointInterval: number;
  /** Seconds over which failed client authentications are counted before their entries are written. */
  authFailureInterval: number;
}

export interface ExchangeSettings {
  requireIntent: boolean;
  intentMaxLength: number;
  maxDelegationDepth: number;
  maxTokenBytes: number;
  maxDetailsBytes: number;
  clockSkew: number;
  /** Seconds a DPoP proof sent with an exchange stays acceptable after its iat. */
  dpopProofMaxAge: number;
  /** Longest lifetime of a private_key_jwt client assertion, seconds (exp - iat, and exp - now). */
  clientAssertionMaxLifetime: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export class ConfigError extends Error {}

const validateFile = compileSchema(fileSchema);

export interface FileConfig {
  tokens?: { access_token_ttl?: number };
  keys?: { algorithm?: SigningAlg; rotation_overlap?: number; min_rotation_overlap?: number };
  server?: { shutdown_timeout?: number; keep_alive_timeout?: number; max_concurrency?: number; max_queue_delay_ms?: number };
  limits?: { body_bytes?: number };
  database?: { pool_max?: number };
  rate_limits?: { token?: Bucket; token_per_address?: Bucket; admin?: Bucket };
  oidc_sweep_interval?: number;
  exchange?: {
    require_intent?: boolean;
    intent_max_length?: number;
    max_delegation_depth?: number;
    max_token_bytes?: number;
    max_details_bytes?: number;
    clock_skew?: number;
    dpop_proof_max_age?: number;
    client_assertion_max_lifetime?: number;
  };
  authorization_details_types?: Record<string, object>;
  policy?: { file?: string };
  development_issuer?: boolean;
  environment?: string;
  ledger?: { checkpoint_every?: number; checkpoint_interval?: number; auth_failure_interval?: number };
}

function readFileConfig(file: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  const parsed: unknown = YAML.parse(text) ?? {};
  if (!validateFile(parsed)) {
    const e = firstError(validateFile.errors);
    throw new ConfigError(`${file}: ${e.field ?? '(root)'} ${e.message}`);
  }
  return parsed as FileConfig;
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT must be an integer 0-65535, got ${value}`);
  return port;
}

/**
 * Builds the one typed configuration object from the environment and the config file.
 * `overrides` lets tests and embedders set file-level keys without writing a file.
 */
export function loadConfig(mode: Mode, env: NodeJS.ProcessEnv = process.env, overrides: FileConfig = {}): Config {
  // INTENTGATE_CONFIG must exist when named; the conventional config/default.yaml is read when present.
  const conventional = path.resolve('config/default.yaml');
  const file = env.INTENTGATE_CONFIG ?? (existsSync(conventional) ? conventional : undefined);
  const fromFile = file ? readFileConfig(file) : {};
  if (!validateFile(overrides)) {
    const e = firstError(validateFile.errors);
    throw new ConfigError(`configuration override: ${e.field ?? '(root)'} ${e.message}`);
  }
  const merged: Resolved = mergeConfig(mergeConfig(DEFAULTS, fromFile), overrides);
  const port = parsePort(env.PORT);
  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const issuer = env.ISSUER ?? (mode === 'development' ? `http://localhost:${port}` : undefined);
  if (issuer === undefined) throw new ConfigError('ISSUER is required in production mode');
  checkIssuer(issuer, mode);
  const environment = env.INTENTGATE_ENVIRONMENT || merged.environment;
  if (environment !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(environment)) {
    throw new ConfigError(`INTENTGATE_ENVIRONMENT must be 1-64 letters, digits, '_', '.' or '-', got ${environment}`);
  }
  const policyName = overrides.policy?.file ?? fromFile.policy?.file;

  const config: Config = {
    mode,
    issuer: issuer.replace(/\/$/, ''),
    port,
    host: env.HOST ?? (mode === 'development' ? '127.0.0.1' : '0.0.0.0'),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.DATA_DIR ?? './data'),
    adminToken: env.ADMIN_TOKEN || undefined,
    kek: env.INTENTGATE_KEK || undefined,
    trustProxy: isTruthy(env.TRUST_PROXY),
    logLevel,
    environment,
    accessTokenTtl: merged.tokens.access_token_ttl,
    signingAlg: merged.keys.algorithm,
    rotationOverlap: merged.keys.rotation_overlap,
    minRotationOverlap: merged.keys.min_rotation_overlap,
    bodyLimit: merged.limits.body_bytes,
    poolMax: merged.database.pool_max,
    rateLimits: { token: merged.rate_limits.token, tokenPerAddress: merged.rate_limits.token_per_address, admin: merged.rate_limits.admin },
    oidcSweepInterval: merged.oidc_sweep_interval,
    exchange: {
      requireIntent: merged.exchange.require_intent,
      intentMaxLength: merged.exchange.intent_max_length,
      maxDelegationDepth: merged.exchange.max_delegation_depth,
      maxTokenBytes: merged.exchange.max_token_bytes,
      maxDetailsBytes: merged.exchange.max_details_bytes,
      clockSkew: merged.exchange.clock_skew,
      dpopProofMaxAge: merged.exchange.dpop_proof_max_age,
      clientAssertionMaxLifetime: merged.exchange.client_assertion_max_lifetime,
    },
    detailTypes: merged.authorization_details_types,
    // A policy named in a file is relative to that file; without one, the shipped example policy.
    policyFile: policyName === undefined ? SHIPPED_POLICY : path.resolve(file ? path.dirname(file) : '.', policyName),
    devIssuer: mode === 'development' && merged.development_issuer,
    ledger: {
      keyFile: env.INTENTGATE_LEDGER_KEY || undefined,
      anchorDir: path.resolve(env.INTENTGATE_ANCHOR_DIR ?? path.join(env.DATA_DIR ?? './data', 'anchors')),
      checkpointEvery: merged.ledger.checkpoint_every,
      checkpointInterval: merged.ledger.checkpoint_interval,
      authFailureInterval: merged.ledger.auth_failure_interval,
    },
    server: {
      shutdownTimeout: merged.server.shutdown_timeout,
      keepAliveTimeout: merged.server.keep_alive_timeout,
      maxConcurrency: merged.server.max_concurrency,
      maxQueueDelayMs: merged.server.max_queue_delay_ms,
    },
  };
  if (config.rotationOverlap < config.minRotationOverlap) {
    throw new ConfigError(`keys.rotation_overlap (${config.rotationOverlap} s) is below keys.min_rotation_overlap (${config.minRotationOverlap} s)`);
  }
  if (mode === 'production') {
    if (!config.databaseUrl) throw new ConfigError('DATABASE_URL is required in production mode');
    if (!config.kek) throw new ConfigError('INTENTGATE_KEK is required in production mode');
    if (!config.ledger.keyFile) throw new ConfigError('INTENTGATE_LEDGER_KEY is required in production mode: the ledger checkpoint key lives outside the database');
    if (!env.INTENTGATE_ANCHOR_DIR) throw new ConfigError('INTENTGATE_ANCHOR_DIR is required in production mode: signed checkpoints are kept outside the database');
  }
  return config;
}

function checkIssuer(issuer: string, mode: Mode): void {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new ConfigError(`ISSUER must be an absolute URL, got ${issuer}`);
  }
  if (url.search || url.hash) throw new ConfigError('ISSUER must not have a query or fragment');
  if (url.protocol === 'https:') return;
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (mode === 'development' && url.protocol === 'http:' && local) return;
  throw new ConfigError(mode === 'production'
    ? 'ISSUER must be an https URL in production mode'
    : 'ISSUER must be https, or http://localhost in development mode');
}

function isTruthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
}
