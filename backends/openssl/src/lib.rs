//! tlsresume over OpenSSL
