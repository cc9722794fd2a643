import type { GoogleAuth } from 'google-auth-library';

/** The OAuth scope of a Cloud SQL IAM database login token. */
export const CLOUD_SQL_LOGIN_SCOPE = 'https://www.googleapis.com/auth/sqlservice.login';

/**
 * Cloud SQL IAM database authentication without a proxy: the password of each new connection
 * is a fresh OAuth access token of the process's Google credentials (google-auth-library
 * caches it and refreshes it before it expires, about hourly). Connect over TLS
 * (`sslmode=require` in the connection string) on the instance's private IP.
 */
export function cloudSqlIamAuth(auth?: GoogleAuth): { password: () => Promise<string>; user: () => Promise<string> } {
  let client: Promise<GoogleAuth> | undefined;
  const googleAuth = () =>
    (client ??= auth
      ? Promise.resolve(auth)
      : // Loaded on first use, so a deployment without IAM login never loads the auth library.
        import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth({ scopes: [CLOUD_SQL_LOGIN_SCOPE] })));
  return {
    async password() {
      const token = await (await googleAuth()).getAccessToken();
      if (!token) throw new Error('Cloud SQL IAM login: the Google credentials gave no access token');
      return token;
    },
    /** The database user of the credentials' service account: its email without ".gserviceaccount.com". */
    async user() {
      const { client_email: email } = await (await googleAuth()).getCredentials();
      if (!email)
        throw new Error(
          'Cloud SQL IAM login: the Google credentials carry no account email; put the database user in the connection string',
        );
      return cloudSqlIamUser(email);
    },
  };
}

/** Cloud SQL names a service account's PostgreSQL user after its email, without the ".gserviceaccount.com" suffix. */
export function cloudSqlIamUser(email: string): string {
  return email.replace(/\.gserviceaccount\.com$/, '');
}
