/**
 * The root of every error this library throws. Each subclass has a stable `name` (safe to match on, and what
 * Lambda reports as `errorType`) and keeps the original error as `cause`. Messages never contain key material,
 * plaintext or record key fields.
 */
export class AsherahError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AsherahError';
  }
}

/** A configuration value is missing, unknown or of the wrong type; the message names the key. */
export class ConfigError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
