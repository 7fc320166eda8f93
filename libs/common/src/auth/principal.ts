/** The authenticated caller, decoded from a verified JWT (SPEC 3). */
export interface Principal {
  userId: string;
  roles: string[];
  name: string;
  isAdmin: boolean;
  /** Expiry as epoch milliseconds, when the token has `exp`. */
  expiresAt?: number;
}

export const ADMIN_ROLES = ['admin', 'chat_admin'];
