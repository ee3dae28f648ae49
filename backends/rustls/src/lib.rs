//! tlsresume over rustls (ring provider)
