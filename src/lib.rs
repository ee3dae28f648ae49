//! tlsresume
