//! The tlsresume scenario engine.
