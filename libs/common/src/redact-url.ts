/** Query parameters whose values are credentials: JWTs, share tokens, file link signatures. */
const SECRET_PARAMETERS = /([?&](?:token|share_token|signature)=)[^&#]*/gi;
/** Path segments that are credentials: `/shared/<share token>`. */
const SECRET_SEGMENTS = /(\/shared\/)[^/?#]+/gi;

/** A URL as it may be logged: tokens, share tokens and signatures replaced by `[redacted]`. */
export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(SECRET_SEGMENTS, '$1[redacted]').replace(SECRET_PARAMETERS, '$1[redacted]');
}
