//! sim-doh
