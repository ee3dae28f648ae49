//! The SMTP line reading shared by the scenario engine and the `tlsresume` command: the
//! workspace's one reply parser, `tlsresume-smtp`'s, under the names these callers use.

/// Reads one line byte by byte (nothing after it consumed); see
/// [`tlsresume_smtp::read_line_unbuffered`].
pub use tlsresume_smtp::read_line_unbuffered;
/// Reads a whole reply and checks its code; returns its lines. See
/// [`tlsresume_smtp::read_reply_lines`].
pub use tlsresume_smtp::read_reply_lines as read_reply;
