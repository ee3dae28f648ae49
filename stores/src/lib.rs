//! Stores that outlive a process for tlsresume.
