// Who is signed in, as the server last told us. The session itself lives in an HttpOnly cookie
// the client never sees; this holds the user, the CSRF token and whether a second factor must
// be set up before anything else.

/**
 * @typedef {"patient" | "pcp" | "psychiatrist" | "therapist" | "care_manager" | "admin"} Role
 * @typedef {{id: number, username: string, display_name: string, role: Role}} User
 * @typedef {{user: User, csrf_token: string, enrolment_required: boolean, idle_timeout_s: number}} SessionBody
 */

export class Session {
  /** @type {User | null} */
  user = null;
  csrfToken = "";
  enrolmentRequired = false;
  idleTimeoutS = 0;

  /** @param {SessionBody} body  the body of login, GET /auth/session or TOTP confirm */
  set(body) {
    this.user = body.user;
    this.csrfToken = body.csrf_token;
    this.enrolmentRequired = body.enrolment_required;
    this.idleTimeoutS = body.idle_timeout_s;
  }

  clear() {
    this.user = null;
    this.csrfToken = "";
    this.enrolmentRequired = false;
    this.idleTimeoutS = 0;
  }

  get signedIn() {
    return this.user !== null;
  }

  /** @param {Role} role */
  is(role) {
    return this.user?.role === role;
  }
}
