//! tlsresume over GnuTLS
