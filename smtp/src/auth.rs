//! SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, both sides, without
//! I/O, and only over TLS: the password goes in the clear inside the TLS session.
//!
//! - The client: [`Credentials`] (refused with a NUL, CR or LF; zeroised when dropped; never
//!   in `Debug` output) and [`AuthClient`], which says what line to send and takes the
//!   server's replies (the 334 challenges, the 235 at the end). [`crate::ClientConfig::auth`]
//!   runs it after the EHLO under TLS; in clear it is refused and nothing is sent.
//! - The server session: [`Authenticator`] (a check of a user name and password, such as
//!   [`UserTable`]) in [`crate::ServerConfig::auth`]; AUTH is advertised under TLS only (a
//!   client that tries it in clear gets 538 5.7.11).

use core::fmt;

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::reply::Reply;

/// A user name and password for AUTH PLAIN or LOGIN. Zeroised when dropped; its `Debug`
/// shows the user name only.
#[derive(Clone)]
pub struct Credentials {
    user: Zeroizing<String>,
    password: Zeroizing<String>,
}

/// Why credentials are refused before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The user name is empty.
    #[error("the AUTH user name is empty")]
    EmptyUser,
    /// A NUL, CR or LF in the user name or password: PLAIN separates its fields with NUL,
    /// and no line break may reach a command line.
    #[error("the AUTH {0} holds a NUL, CR or LF")]
    Forbidden(&'static str),
}

impl Credentials {
    /// Credentials for `user` with `password`.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, CredentialsError> {
        let user = Zeroizing::new(user.into());
        let password = Zeroizing::new(password.into());
        let bad = |s: &str| s.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n'));
        if user.is_empty() {
            return Err(CredentialsError::EmptyUser);
        }
        if bad(&user) {
            return Err(CredentialsError::Forbidden("user name"));
        }
        if bad(&password) {
            return Err(CredentialsError::Forbidden("password"));
        }
        Ok(Self { user, password })
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user.as_str())
            .finish_non_exhaustive()
    }
}

/// The SASL mechanisms this crate speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616): user and password in the AUTH line.
    Plain,
    /// LOGIN: user and password each in answer to a 334.
    Login,
}

impl Mechanism {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// The one to use of those a server offers (its EHLO response's AUTH mechanisms,
    /// upper-cased): PLAIN, else LOGIN.
    pub fn choose<S: AsRef<str>>(offered: &[S]) -> Option<Self> {
        let has = |m: &str| offered.iter().any(|o| o.as_ref().eq_ignore_ascii_case(m));
        if has("PLAIN") {
            Some(Mechanism::Plain)
        } else if has("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Why AUTH did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The connection is not under TLS: no credential is sent in clear.
    #[error("AUTH refused in clear: credentials are sent under TLS only")]
    NotOverTls,
    /// The server offers neither PLAIN nor LOGIN.
    #[error("the server offers no AUTH mechanism this client has (PLAIN, LOGIN); it offers: {}", if .0.is_empty() { "none".to_owned() } else { .0.join(" ") })]
    NoMechanism(Vec<String>),
    /// The server refused (535 bad credentials, 454 for now, 538 encryption required, …).
    #[error("AUTH refused by the server: {0}")]
    Refused(Reply),
    /// A reply that has no place here (a 334 after the last answer, a 2xx other than 235).
    #[error("unexpected reply to AUTH: {0}")]
    Unexpected(Reply),
}

/// The client's side of one AUTH exchange, without I/O. Each line it gives is to be sent as
/// it is (CR LF added) and is zeroised when dropped.
///
/// ```
/// use tlsresume_smtp::auth::{AuthClient, Credentials};
/// use tlsresume_smtp::Reply;
///
/// let credentials = Credentials::new("user", "pass")?;
/// let (mut auth, first) = AuthClient::start(&credentials, &["LOGIN"], true)?;
/// assert_eq!(first.as_str(), "AUTH LOGIN");
/// let next = auth.next(&Reply::from_lines(&["334 VXNlcm5hbWU6"])?)?;
/// assert_eq!(next.as_deref().map(String::as_str), Some("dXNlcg=="));
/// let next = auth.next(&Reply::from_lines(&["334 UGFzc3dvcmQ6"])?)?;
/// assert_eq!(next.as_deref().map(String::as_str), Some("cGFzcw=="));
/// assert_eq!(auth.next(&Reply::from_lines(&["235 2.7.0 ok"])?)?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AuthClient {
    credentials: Credentials,
    mechanism: Mechanism,
    /// Answers given so far.
    answered: u8,
}

impl AuthClient {
    /// Starts AUTH with `credentials` towards a server offering `offered`; `tls`: whether the
    /// connection is under TLS (refused otherwise). Returns the exchange and the AUTH line.
    pub fn start<S: AsRef<str>>(
        credentials: &Credentials,
        offered: &[S],
        tls: bool,
    ) -> Result<(Self, Zeroizing<String>), AuthError> {
        if !tls {
            return Err(AuthError::NotOverTls);
        }
        let mechanism = Mechanism::choose(offered).ok_or_else(|| {
            AuthError::NoMechanism(offered.iter().map(|o| o.as_ref().to_owned()).collect())
        })?;
        let first = match mechanism {
            Mechanism::Plain => {
                // authzid NUL authcid NUL password, the authzid empty (RFC 4616 §2).
                let mut raw = Zeroizing::new(Vec::with_capacity(
                    credentials.user.len() + credentials.password.len() + 2,
                ));
                raw.push(0);
                raw.extend_from_slice(credentials.user.as_bytes());
                raw.push(0);
                raw.extend_from_slice(credentials.password.as_bytes());
                let encoded = Zeroizing::new(Base64::encode_string(&raw));
                Zeroizing::new(format!("AUTH PLAIN {}", encoded.as_str()))
            }
            Mechanism::Login => Zeroizing::new("AUTH LOGIN".to_owned()),
        };
        Ok((
            Self {
                credentials: credentials.clone(),
                mechanism,
                answered: 0,
            },
            first,
        ))
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the server's reply: `Some(line)` to send next, `None` when authenticated (235).
    pub fn next(&mut self, reply: &Reply) -> Result<Option<Zeroizing<String>>, AuthError> {
        match reply.code() {
            235 => Ok(None),
            334 if self.mechanism == Mechanism::Login && self.answered < 2 => {
                // The server's prompts ("Username:", "Password:") in that order.
                let secret = if self.answered == 0 {
                    &self.credentials.user
                } else {
                    &self.credentials.password
                };
                self.answered += 1;
                Ok(Some(Zeroizing::new(Base64::encode_string(
                    secret.as_bytes(),
                ))))
            }
            400..=599 => Err(AuthError::Refused(reply.clone())),
            _ => Err(AuthError::Unexpected(reply.clone())),
        }
    }
}

/// What a server checks a user name and password with. Called as the AUTH exchange is read:
/// it must not wait on I/O.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Whether `password` is `user`'s.
    fn verify(&self, user: &str, password: &[u8]) -> bool;
}

/// A fixed table of users and passwords, compared through SHA-256 digests in constant time.
#[derive(Clone, Default)]
pub struct UserTable {
    users: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for UserTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTable")
            .field(
                "users",
                &self.users.iter().map(|u| &u.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A line of a user file that is not `user:password`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {0}: expected user:password (no NUL, CR or LF; an empty user name is refused)")]
pub struct UserFileError(pub usize);

impl UserTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `credentials` added.
    pub fn with(mut self, credentials: &Credentials) -> Self {
        self.users.push((
            credentials.user.to_string(),
            Zeroizing::new(digest(credentials.password.as_bytes())),
        ));
        self
    }

    /// A table from lines `user:password` (the first colon separates; empty lines and lines
    /// starting with `#` are skipped).
    pub fn parse(text: &str) -> Result<Self, UserFileError> {
        let mut table = Self::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, password) = line.split_once(':').ok_or(UserFileError(i + 1))?;
            let credentials = Credentials::new(user, password).map_err(|_| UserFileError(i + 1))?;
            table = table.with(&credentials);
        }
        Ok(table)
    }

    /// How many users it holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

impl Authenticator for UserTable {
    fn verify(&self, user: &str, password: &[u8]) -> bool {
        let given = Zeroizing::new(digest(password));
        let mut found = false;
        for (name, stored) in &self.users {
            // Every entry's digest compared whole: the time does not depend on the password.
            let same = stored
                .iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            found |= same && name == user;
        }
        found
    }
}

/// Where the server session is in an AUTH exchange.
#[derive(Debug)]
pub(crate) enum ServerAuth {
    /// After `AUTH PLAIN` without an initial response: the 334 was sent.
    Plain,
    /// After `AUTH LOGIN`: the user name is awaited.
    LoginUser,
    /// The password of this user is awaited.
    LoginPassword(Zeroizing<String>),
}

/// What an AUTH line does.
#[derive(Debug)]
pub(crate) enum ServerStep {
    /// Send this reply, and wait for the next line in this state.
    Continue(&'static str, ServerAuth),
    /// Authenticated as this user: 235.
    Done(String),
    /// Refused: this reply.
    Refused(&'static str),
}

pub(crate) const BAD_CREDENTIALS: &str = "535 5.7.8 Authentication credentials invalid\r\n";
const BAD_BASE64: &str = "501 5.5.2 Cannot decode the AUTH response\r\n";
const CANCELLED: &str = "501 5.0.0 AUTH cancelled\r\n";
const USERNAME: &str = "334 VXNlcm5hbWU6\r\n";
const PASSWORD: &str = "334 UGFzc3dvcmQ6\r\n";

impl ServerAuth {
    /// `AUTH mechanism [initial-response]`, the arguments after `AUTH`, with `offered`
    /// mechanisms.
    pub(crate) fn start(
        args: &str,
        offered: &[Mechanism],
        check: &dyn Authenticator,
    ) -> ServerStep {
        let mut words = args.split_ascii_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        if !offered.iter().any(|m| m.name() == mechanism) {
            return ServerStep::Refused("504 5.5.4 Unrecognized authentication type\r\n");
        }
        match (mechanism.as_str(), initial) {
            ("PLAIN", None) => ServerStep::Continue("334 \r\n", ServerAuth::Plain),
            ("PLAIN", Some(ir)) => ServerAuth::Plain.line(ir, check),
            ("LOGIN", None) => ServerStep::Continue(USERNAME, ServerAuth::LoginUser),
            ("LOGIN", Some(ir)) => ServerAuth::LoginUser.line(ir, check),
            _ => ServerStep::Refused("504 5.5.4 Unrecognized authentication type\r\n"),
        }
    }

    /// A line of the exchange (`*` cancels; RFC 4954 §4: `=` is an empty response).
    pub(crate) fn line(self, line: &str, check: &dyn Authenticator) -> ServerStep {
        if line == "*" {
            return ServerStep::Refused(CANCELLED);
        }
        let decoded = if line == "=" {
            Some(Zeroizing::new(Vec::new()))
        } else {
            Base64::decode_vec(line).ok().map(Zeroizing::new)
        };
        let Some(decoded) = decoded else {
            return ServerStep::Refused(BAD_BASE64);
        };
        match self {
            ServerAuth::Plain => {
                // authzid NUL authcid NUL password; an authzid other than the user is refused.
                let mut parts = decoded.splitn(3, |&b| b == 0);
                let (Some(authz), Some(user), Some(password)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return ServerStep::Refused(BAD_CREDENTIALS);
                };
                let Ok(user) = std::str::from_utf8(user) else {
                    return ServerStep::Refused(BAD_CREDENTIALS);
                };
                let authz_ok = authz.is_empty() || authz == user.as_bytes();
                if authz_ok && check.verify(user, password) {
                    ServerStep::Done(user.to_owned())
                } else {
                    ServerStep::Refused(BAD_CREDENTIALS)
                }
            }
            ServerAuth::LoginUser => match String::from_utf8(decoded.to_vec()) {
                Ok(user) => {
                    ServerStep::Continue(PASSWORD, ServerAuth::LoginPassword(Zeroizing::new(user)))
                }
                Err(_) => ServerStep::Refused(BAD_CREDENTIALS),
            },
            ServerAuth::LoginPassword(user) => {
                if check.verify(&user, &decoded) {
                    ServerStep::Done(user.to_string())
                } else {
                    ServerStep::Refused(BAD_CREDENTIALS)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &str) -> Reply {
        Reply::from_lines(&[line]).expect("reply")
    }

    #[test]
    fn credentials_with_a_line_break_or_nul_are_refused() {
        for (user, password) in [
            ("u\r\nMAIL FROM:<x@evil.example>", "p"),
            ("u", "p\r\nRSET"),
            ("u\0admin", "p"),
            ("u", "p\n"),
        ] {
            assert!(
                matches!(
                    Credentials::new(user, password),
                    Err(CredentialsError::Forbidden(_))
                ),
                "{user:?} {password:?}"
            );
        }
        assert_eq!(
            Credentials::new("", "p").map(drop),
            Err(CredentialsError::EmptyUser)
        );
        let c = Credentials::new("user", "s3cret").expect("fine");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("user") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn plain_in_one_line_and_never_in_clear() {
        let c = Credentials::new("user", "pass").expect("fine");
        assert_eq!(
            AuthClient::start(&c, &["PLAIN"], false).map(drop),
            Err(AuthError::NotOverTls)
        );
        assert_eq!(
            AuthClient::start(&c, &["CRAM-MD5"], true).map(drop),
            Err(AuthError::NoMechanism(vec!["CRAM-MD5".into()]))
        );
        let (mut auth, first) = AuthClient::start(&c, &["LOGIN", "PLAIN"], true).expect("plain");
        assert_eq!(auth.mechanism(), Mechanism::Plain);
        assert_eq!(first.as_str(), "AUTH PLAIN AHVzZXIAcGFzcw==");
        assert!(matches!(
            auth.next(&reply("535 5.7.8 no")),
            Err(AuthError::Refused(_))
        ));
        assert!(matches!(
            auth.next(&reply("334 ")),
            Err(AuthError::Unexpected(_))
        ));
    }

    const BOTH: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

    #[test]
    fn the_server_side_checks_both_mechanisms() {
        let table = UserTable::parse("# users\nuser:pass\nother:x:y\n").expect("table");
        assert_eq!(table.len(), 2);
        assert!(table.verify("other", b"x:y"));
        assert!(!table.verify("user", b"pas"));
        assert!(!table.verify("nobody", b"pass"));
        assert_eq!(UserTable::parse("nocolon").map(drop), Err(UserFileError(1)));
        let ok = |step: ServerStep| matches!(step, ServerStep::Done(u) if u == "user");
        assert!(ok(ServerAuth::start(
            "PLAIN AHVzZXIAcGFzcw==",
            BOTH,
            &table
        )));
        assert!(ok(ServerAuth::start(
            "plain dXNlcgB1c2VyAHBhc3M=",
            BOTH,
            &table
        )));
        let ServerStep::Continue(_, state) = ServerAuth::start("PLAIN", BOTH, &table) else {
            panic!("334");
        };
        assert!(ok(state.line("AHVzZXIAcGFzcw==", &table)));
        // Another user's authorisation identity, a wrong password, garbage, a cancel.
        for (args, refusal) in [
            ("PLAIN b3RoZXIAdXNlcgBwYXNz", BAD_CREDENTIALS),
            ("PLAIN AHVzZXIAcGFzcz8=", BAD_CREDENTIALS),
            ("PLAIN !!!", BAD_BASE64),
            ("PLAIN *", CANCELLED),
        ] {
            assert!(
                matches!(ServerAuth::start(args, BOTH, &table), ServerStep::Refused(r) if r == refusal),
                "{args}"
            );
        }
        let ServerStep::Continue(USERNAME, state) = ServerAuth::start("LOGIN", BOTH, &table) else {
            panic!("username");
        };
        let ServerStep::Continue(PASSWORD, state) = state.line("dXNlcg==", &table) else {
            panic!("password");
        };
        assert!(ok(state.line("cGFzcw==", &table)));
        assert!(matches!(
            ServerAuth::start("PLAIN AHVzZXIAcGFzcw==", &[Mechanism::Login], &table),
            ServerStep::Refused(r) if r.starts_with("504")
        ));
    }
}
