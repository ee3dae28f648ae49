//! Several certificates and the server name: one GnuTLS credentials structure per set of
//! identities a client's name can select (GnuTLS picks between an RSA and an ECDSA key of one
//! structure by what the client supports), switched to after the ClientHello's name is read;
//! and the ticket master secret bound to that name, because GnuTLS resumes a ticket whatever
//! name it was issued under and cannot be asked.

use std::sync::Arc;

use tlsresume_core::identities::IdentityTable;

use crate::ffi::{Credentials, SessionRef};
use crate::tickets::BoundMasters;
use zeroize::Zeroizing;

/// What one server session needs to choose by name.
pub(crate) struct NameChoice {
    /// The server's identities and how a name selects a set of them.
    pub(crate) table: Arc<IdentityTable>,
    /// The credentials of each set (index: the set).
    pub(crate) credentials: Arc<Vec<Arc<Credentials>>>,
    /// The master secret the session's tickets are sealed under, when the client gets tickets
    /// (with the masters bound to names derived from it so far).
    pub(crate) master: Option<Arc<BoundMasters>>,
}

/// Chooses for the ClientHello GnuTLS has just read: binds the ticket master to the name the
/// client sent (a ticket issued under another name, or under none, does not decrypt: a full
/// handshake and a new ticket follow) and says which set's credentials to switch to (`None`:
/// the default set's, set at the start). A failure to re-key leaves tickets under the name-less
/// master, where no named ticket decrypts either.
pub(crate) fn choose(choice: &NameChoice, session: &mut SessionRef) -> Option<usize> {
    let mut bound = Zeroizing::new([0u8; 64]);
    let (set, named) = session.with_server_name(|name| {
        let named = match (&choice.master, name) {
            (Some(master), Some(name)) => {
                master.with_bound(name, |b| *bound = *b);
                true
            }
            _ => false,
        };
        (choice.table.select(name), named)
    });
    if named {
        // GnuTLS copies the key; the session may only fail to take it if it is malformed.
        let _ = session.enable_tickets_server(&bound[..]);
    }
    (set != 0).then_some(set)
}
